"""The Support PIN and App Unlock PIN of each account, encrypted at rest."""

from django.conf import settings
from django.db import models


class AccountPins(models.Model):
    """The two PINs of one account and the counters that throttle guessing them.

    Both PINs are stored only as AES-256-GCM ciphertext (ehr/crypto.py) bound to
    this model, the field and the user; the plaintext exists only inside the
    services in support_pin/services.py and in the one response that reveals it.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="pins",
        help_text="The account these PINs belong to.",
    )
    support_pin = models.CharField(
        max_length=120, help_text="Support PIN, encrypted (v1:key id:nonce+ciphertext)."
    )
    app_pin = models.CharField(
        max_length=120, help_text="App Unlock PIN, encrypted (v1:key id:nonce+ciphertext)."
    )
    support_pin_changed_at = models.DateTimeField(help_text="When the Support PIN last changed.")
    failed_validations = models.PositiveSmallIntegerField(
        default=0, help_text="Consecutive wrong PINs given to the support console."
    )
    validation_locked_until = models.DateTimeField(
        null=True, blank=True, help_text="Validation refuses every PIN until then."
    )
    validation_locks_in_a_row = models.PositiveSmallIntegerField(
        default=0,
        help_text="Validation locks since the last successful validation or the owner's new PIN.",
    )
    validation_blocked_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "Set when locks in a row reached the limit: validation refuses every PIN until "
            "the owner generates a new one (or a practice admin unblocks it)."
        ),
    )

    class Meta:
        verbose_name = "account PINs"
        verbose_name_plural = "account PINs"

    def __str__(self) -> str:
        return f"PINs of user {self.user_id}"
