from io import BytesIO

import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from accounts.images import clean_image_upload
from tests.images import image_bytes, upload


def test_png_and_jpeg_are_accepted_and_re_encoded():
    png = clean_image_upload(upload("me.png", image_bytes("PNG")))
    assert png.name == "upload.png"
    jpeg = clean_image_upload(upload("me.jpeg", image_bytes("JPEG"), "image/jpeg"))
    assert jpeg.name == "upload.jpg"
    assert Image.open(BytesIO(jpeg.read())).format == "JPEG"


def test_the_extension_follows_the_content_not_the_client_name():
    stored = clean_image_upload(upload("evil.html", image_bytes("JPEG"), "text/html"))
    assert stored.name == "upload.jpg"


def test_metadata_and_trailing_payloads_do_not_survive():
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker-Serial-XYZ"  # Make
    data = image_bytes("JPEG", exif=exif.tobytes()) + b"<script>alert(1)</script>"
    stored = clean_image_upload(upload("photo.jpg", data, "image/jpeg")).read()
    assert b"CameraMaker-Serial-XYZ" not in stored
    assert b"<script>" not in stored


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("doc.png", b"%PDF-1.7 this is not an image", "not a valid PNG or JPEG"),
        ("x.png", b"", "not a valid PNG or JPEG"),
        ("anim.gif", image_bytes("GIF"), "Upload a PNG or JPEG"),
        ("pic.bmp", image_bytes("BMP"), "Upload a PNG or JPEG"),
        ("cut.png", image_bytes("PNG", size=(300, 300))[:200], "not a valid PNG or JPEG"),
    ],
)
def test_fake_truncated_and_other_formats_are_refused(name, data, message):
    with pytest.raises(ValidationError, match=message):
        clean_image_upload(upload(name, data))


def test_oversized_file_is_refused(settings):
    data = image_bytes("PNG") + b"\0" * (2 * 1024 * 1024)
    with pytest.raises(ValidationError, match="larger than 2 MB"):
        clean_image_upload(upload("big.png", data))


def test_pixel_bomb_is_refused_before_decoding():
    # 5000 x 5000 of one colour compresses to a few kilobytes but would take 75 MB to decode.
    data = image_bytes("PNG", size=(5000, 5000))
    assert len(data) < 2 * 1024 * 1024
    with pytest.raises(ValidationError, match="too many pixels"):
        clean_image_upload(upload("bomb.png", data))


@pytest.mark.parametrize("size", [(20000, 1), (1, 20000), (331, 33), (33, 331)])
def test_absurd_aspect_ratios_are_refused_with_the_reason(size):
    with pytest.raises(ValidationError, match="neither side may be more than 10 times the other"):
        clean_image_upload(upload("strip.png", image_bytes("PNG", size=size)))


@pytest.mark.parametrize("size", [(330, 33), (33, 330), (1000, 100), (1, 1)])
def test_shapes_up_to_ten_to_one_are_accepted(size):
    stored = clean_image_upload(upload("banner.png", image_bytes("PNG", size=size)))
    assert Image.open(BytesIO(stored.read())).size == size
