"""WSGI entry point (gunicorn ehr.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ehr.settings")
application = get_wsgi_application()
