from playwright.sync_api import expect

from accounts.models import ProviderProfile
from support_pin.models import AccountPins
from tests.browser.conftest import sign_in


def test_provider_changes_job_title_and_it_stays_changed(page, provider, password):
    sign_in(page, "dorothy", password)
    page.get_by_text("Account", exact=True).click()
    page.get_by_role("link", name="Account Settings").click()
    expect(page.get_by_role("heading", name="Account Settings")).to_be_visible()
    expect(page.locator("#doctor-id")).to_have_text("496094")

    page.get_by_label("Job Title").fill("Medical Director")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Your profile has been saved.")

    page.reload()
    expect(page.get_by_label("Job Title")).to_have_value("Medical Director")
    assert ProviderProfile.objects.get(user=provider).job_title == "Medical Director"


def test_bad_phone_and_website_show_one_error_each_save_nothing_then_read_back_national(
    page, provider, password
):
    sign_in(page, "dorothy", password)
    page.goto("/account/settings/")
    page.get_by_label("Job Title").fill("Should not be saved")
    page.get_by_label("Cell Phone").fill("call me maybe")
    page.get_by_label("Website").fill("not a web address")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Enter a valid phone number")).to_have_count(1)
    expect(page.get_by_text("Enter a web address such as https://example.org.")).to_have_count(1)
    assert ProviderProfile.objects.get(user=provider).job_title == ""

    # Put right, a new number asks for the password (support verifies callers by it) ...
    page.get_by_label("Cell Phone").fill("+1 202 555 0143")
    page.get_by_label("Website").fill("example.org")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Enter your password to change a phone number.")).to_be_visible()
    assert ProviderProfile.objects.get(user=provider).cell_phone == ""
    # ... and is shown back the way the practice's country writes it.
    page.get_by_label("Your password (only to change a phone number)").fill(password)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Your profile has been saved.")
    expect(page.get_by_label("Cell Phone")).to_have_value("(202) 555-0143")


def test_a_trivial_app_unlock_pin_is_refused_with_the_reason(page, provider, password):
    before = AccountPins.objects.get(user=provider).app_pin
    sign_in(page, "dorothy", password)
    page.goto("/account/pins/app/")
    page.get_by_role("textbox", name="Your password").fill(password)
    page.get_by_label("New App Unlock PIN").fill("1234")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("This PIN is too easy to guess")).to_be_visible()
    assert AccountPins.objects.get(user=provider).app_pin == before


def test_an_extreme_picture_stays_in_its_box(page, provider, password):
    # Stored before uploads were checked for their shape: the page must still hold it.
    from django.core.files.base import ContentFile

    from tests.images import image_bytes

    profile = ProviderProfile.objects.get(user=provider)
    profile.profile_picture.save("strip.png", ContentFile(image_bytes("PNG", (20000, 1))))
    sign_in(page, "dorothy", password)
    page.goto("/account/settings/")
    picture = page.get_by_alt_text("Current profile picture")
    expect(picture).to_be_attached()
    box = picture.bounding_box()
    assert box is not None and box["width"] <= 200
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths


def test_a_replaced_picture_shows_at_once(page, provider, password, tmp_path):
    from tests.images import image_bytes

    sign_in(page, "dorothy", password)
    page.goto("/account/settings/")
    shown = []
    for n, colour_size in enumerate(((40, 40), (60, 30))):
        path = tmp_path / f"picture{n}.png"
        path.write_bytes(image_bytes("PNG", colour_size))
        page.get_by_label("Profile Picture").set_input_files(str(path))
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status")).to_contain_text("Your profile has been saved.")
        page.reload()
        picture = page.get_by_alt_text("Current profile picture")
        expect(picture).to_be_attached()
        # What the browser actually shows, not only the address: the image's own size.
        expect(picture).to_have_js_property("complete", True)
        shown.append((picture.get_attribute("src"), picture.evaluate("i => i.naturalWidth")))
    (first_url, first_width), (second_url, second_width) = shown
    assert first_url != second_url
    assert (first_width, second_width) == (40, 60)


def test_leaving_with_unsaved_profile_edits_asks_first_and_saving_does_not(
    page, provider, password
):
    """Generate New PIN is a form of its own: typed profile edits would go with the page."""
    sign_in(page, provider.username, password)
    asked = []

    def answer(dialog):
        asked.append(dialog.type)
        dialog.dismiss()  # stay on the page

    changed_at = AccountPins.objects.get(user=provider).support_pin_changed_at
    page.on("dialog", answer)
    page.get_by_label("Job Title").fill("Attending physician")
    page.get_by_role("button", name="Generate New PIN").click()
    expect(page.get_by_label("Job Title")).to_have_value("Attending physician")
    assert asked == ["beforeunload"]
    assert AccountPins.objects.get(user=provider).support_pin_changed_at == changed_at
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_be_visible()
    assert asked == ["beforeunload"]
    assert ProviderProfile.objects.get(user=provider).job_title == "Attending physician"
