"""Checking and normalising uploaded profile images.

An upload is accepted only if Pillow decodes it as a PNG or JPEG of sane size.
It is then re-encoded: what is stored is pixels we produced, never the bytes the
client sent, so EXIF data (GPS positions, device serials), trailing payloads and
polyglot files do not survive.
"""

from io import BytesIO

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts import conf

# Pillow format name -> (stored extension, content type)
IMAGE_FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg")}
CONTENT_TYPES = {ext: content_type for ext, content_type in IMAGE_FORMATS.values()}

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
