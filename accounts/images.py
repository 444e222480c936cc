"""Checking and normalising uploaded profile images.

An upload is accepted only if Pillow decodes it as a PNG or JPEG of sane size and
shape (no side more than IMAGE_MAX_ASPECT times the other: a 20000 x 1 strip is
no picture of anyone, and pages show images in a bounded box anyway).
It is then re-encoded: what is stored is pixels we produced, never the bytes the
client sent, so EXIF data (GPS positions, device serials), trailing payloads and
polyglot files do not survive.
"""

import hashlib
from io import BytesIO

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts import conf

# Pillow format name -> (stored extension, content type)
IMAGE_FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg")}
CONTENT_TYPES = {ext: content_type for ext, content_type in IMAGE_FORMATS.values()}
# URL name of an image -> field of ProviderProfile
IMAGE_FIELDS = {"picture": "profile_picture", "logo": "business_logo"}

_DECODE_ERRORS = (
    UnidentifiedImageError,
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    Image.DecompressionBombError,
)


def clean_image_upload(upload: UploadedFile) -> ContentFile:
    """Return a re-encoded copy of a valid PNG or JPEG upload, or raise ValidationError."""
    limit_mb = conf.IMAGE_MAX_BYTES // (1024 * 1024)
    if upload.size is None or upload.size > conf.IMAGE_MAX_BYTES:
        raise ValidationError(f"The image is larger than {limit_mb} MB.", code="too_large")
    data = upload.read(conf.IMAGE_MAX_BYTES + 1)
    if len(data) > conf.IMAGE_MAX_BYTES:
        raise ValidationError(f"The image is larger than {limit_mb} MB.", code="too_large")
    invalid = ValidationError("The file is not a valid PNG or JPEG image.", code="invalid_image")
    try:
        with Image.open(BytesIO(data)) as probe:
            image_format = probe.format
            if image_format not in IMAGE_FORMATS:
                raise ValidationError("Upload a PNG or JPEG image.", code="wrong_format")
            width, height = probe.size
            if width * height > conf.IMAGE_MAX_PIXELS:
                raise ValidationError(
                    "The image has too many pixels (at most 4096 x 4096).", code="too_many_pixels"
                )
            if max(width, height) > conf.IMAGE_MAX_ASPECT * min(width, height):
                raise ValidationError(
                    f"The image is {width} x {height} pixels: neither side may be more than "
                    f"{conf.IMAGE_MAX_ASPECT} times the other. Crop it and upload it again.",
                    code="aspect_ratio",
                )
            probe.verify()
        with Image.open(BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            out = BytesIO()
            if image_format == "JPEG":
                if upright.mode not in ("RGB", "L"):
                    upright = upright.convert("RGB")
                upright.save(out, format="JPEG", quality=90, optimize=True)
            else:
                upright.save(out, format="PNG", optimize=True)
    except ValidationError:
        raise
    except _DECODE_ERRORS:
        raise invalid from None
    extension = IMAGE_FORMATS[image_format][0]
    return ContentFile(out.getvalue(), name=f"upload.{extension}")


def image_version(stored_name: str) -> str:
    """Return a short tag of a stored image's name, for its URL.

    Every upload is stored under a new random name, so the tag, and with it the
    URL, changes whenever the image does: a browser never shows a cached old
    image for a new one, and an old URL never serves the new image.
    """
    return hashlib.sha256(stored_name.encode()).hexdigest()[:16]
