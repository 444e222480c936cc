"""gunicorn's settings for this app, read by gunicorn from the directory it starts in.

gunicorn names itself and its version in a Server header on every response: the
first thing a scanner fingerprints. The app answers as "ehr" instead.
"""

import gunicorn.http.wsgi

gunicorn.http.wsgi.SERVER = "ehr"
