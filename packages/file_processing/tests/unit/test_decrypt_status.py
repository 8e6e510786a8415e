"""The decision to release plaintext, taken from gpg status lines alone (no gpg run here).

The canned lines are what gpg 2.2 prints; the AEAD case is what gpg 2.3+ prints
for OCB-encrypted messages, which carry no MDC and must still be accepted.
"""

from __future__ import annotations

import pytest

from file_processing.decrypt import _judge, _Outcome, _parse_status
from file_processing.errors import GpgError
from file_processing.reasons import Reason

FPR = "6B611910E40D7B5D96C853CA1CC9B9464D0AED93"
VENDOR = "F20F2EFE7F1DEEE14A3B6962F584DDF257A70496"
HEAD = f"""\
[GNUPG:] ENC_TO 87104721CAADCFB6 18 0
[GNUPG:] DECRYPTION_KEY 2759E22A0595E5216730C26A87104721CAADCFB6 {FPR} u
[GNUPG:] BEGIN_DECRYPTION
"""
GOOD = (
    HEAD
    + """\
[GNUPG:] DECRYPTION_INFO 2 9 0
[GNUPG:] PLAINTEXT 62 1795630422 orders.csv
[GNUPG:] DECRYPTION_OKAY
[GNUPG:] GOODMDC
[GNUPG:] END_DECRYPTION
"""
)
VENDOR_SIGNED = GOOD.replace(
    "[GNUPG:] DECRYPTION_OKAY",
    f"""[GNUPG:] NEWSIG v@example.com
[GNUPG:] GOODSIG F584DDF257A70496 Vendor <v@example.com>
[GNUPG:] VALIDSIG {VENDOR} 2026-11-25 1795630460 0 4 0 22 10 00 {VENDOR}
[GNUPG:] DECRYPTION_OKAY""",
)


def outcome(text: str, *, exceeded: str | None = None, stderr: str = "") -> _Outcome:
    records = [parsed for line in text.splitlines() if (parsed := _parse_status(line))]
    return _Outcome(records, stderr, 10, exceeded)


def test_intact_message_is_released_with_its_details() -> None:
    verdict = _judge(outcome(GOOD), frozenset(), "ignore")

    assert verdict.reason is None
    assert verdict.recipient == FPR
    assert verdict.literal_name == "orders.csv"


def test_aead_message_without_goodmdc_is_released() -> None:
    aead = GOOD.replace("DECRYPTION_INFO 2 9 0", "DECRYPTION_INFO 0 9 2").replace(
        "[GNUPG:] GOODMDC\n", ""
    )

    assert _judge(outcome(aead), frozenset(), "ignore").reason is None


def test_okay_without_mdc_is_refused_for_integrity() -> None:
    # What gpg prints under --ignore-mdc-error: DECRYPTION_OKAY for an unprotected message.
    unprotected = GOOD.replace("DECRYPTION_INFO 2 9 0", "DECRYPTION_INFO 0 9 0").replace(
        "[GNUPG:] GOODMDC\n", ""
    )

    assert _judge(outcome(unprotected), frozenset(), "ignore").reason == Reason.PGP_INTEGRITY


def test_missing_end_of_decryption_is_not_success() -> None:
    cut = GOOD.replace("[GNUPG:] END_DECRYPTION\n", "")

    assert _judge(outcome(cut), frozenset(), "ignore").reason == Reason.PGP_CORRUPT


def test_failure_without_decryption_failed_status_is_still_refused() -> None:
    # A truncated compressed message: gpg prints NODATA and never DECRYPTION_FAILED.
    lines = "[GNUPG:] ENC_TO 87104721CAADCFB6 18 0\n[GNUPG:] NODATA 3\n"
    stderr = "gpg: block_filter: pending bytes!\n"

    assert (
        _judge(outcome(lines, stderr=stderr), frozenset(), "ignore").reason == Reason.PGP_TRUNCATED
    )


def test_limit_stop_wins_over_any_status() -> None:
    verdict = _judge(outcome(GOOD, exceeded="plaintext exceeds 10 bytes"), frozenset(), "ignore")

    assert verdict.reason == Reason.PGP_BOMB


def test_bad_signature_is_refused_even_without_vendor_keys() -> None:
    bad = GOOD.replace(
        "[GNUPG:] DECRYPTION_OKAY", "[GNUPG:] BADSIG F584DDF257A70496 V\n[GNUPG:] DECRYPTION_OKAY"
    )

    assert _judge(outcome(bad), frozenset(), "ignore").reason == Reason.PGP_BAD_SIGNATURE


def test_expired_vendor_key_signature_is_refused() -> None:
    expired = VENDOR_SIGNED.replace("GOODSIG", "EXPKEYSIG")

    assert (
        _judge(outcome(expired), frozenset({VENDOR}), "required").reason == Reason.PGP_BAD_SIGNATURE
    )


def test_vendor_signature_is_accepted_by_primary_fingerprint() -> None:
    verdict = _judge(outcome(VENDOR_SIGNED), frozenset({VENDOR}), "required")

    assert verdict.reason is None
    assert verdict.signer == VENDOR


def test_wrong_passphrase_is_a_setup_error_not_a_refusal() -> None:
    lines = HEAD + "[GNUPG:] ERROR pkdecrypt_failed 67108875\n[GNUPG:] DECRYPTION_FAILED\n"

    with pytest.raises(GpgError, match="passphrase"):
        _judge(outcome(lines), frozenset(), "ignore")


@pytest.mark.parametrize(
    ("returncode", "stderr", "said"),
    [
        (2, "gpg: signal Interrupt caught ... exiting\n", "Interrupt"),
        (2, "gpg: signal Terminated caught ... exiting\n", "Terminated"),
        (-15, "", "SIGTERM"),
        (-9, "", "SIGKILL"),
    ],
)
def test_gpg_stopped_by_a_signal_is_no_verdict_on_the_message(
    returncode: int, stderr: str, said: str
) -> None:
    cut_short = outcome(HEAD, stderr=stderr)
    cut_short.returncode = returncode

    with pytest.raises(GpgError, match=said):
        _judge(cut_short, frozenset(), "ignore")


def test_a_message_decrypted_whole_is_released_even_if_a_signal_came_after() -> None:
    late = outcome(GOOD, stderr="gpg: signal Terminated caught ... exiting\n")
    late.returncode = 2

    assert _judge(late, frozenset(), "ignore").reason is None


def test_if_present_accepts_an_unsigned_message() -> None:
    verdict = _judge(outcome(GOOD), frozenset({VENDOR}), "if_present")

    assert verdict.reason is None
    assert verdict.signer is None


def test_if_present_refuses_a_signature_from_an_unknown_key() -> None:
    unknown = VENDOR_SIGNED.replace(VENDOR, "0" * 40)

    assert _judge(outcome(unknown), frozenset({VENDOR}), "if_present").reason == (
        Reason.PGP_BAD_SIGNATURE
    )


def test_if_present_accepts_a_good_signature_from_any_of_several_vendor_keys() -> None:
    verdict = _judge(outcome(VENDOR_SIGNED), frozenset({"1" * 40, VENDOR}), "if_present")

    assert verdict.signer == VENDOR


def test_ignore_accepts_an_expired_signature_but_never_a_bad_one() -> None:
    expired = VENDOR_SIGNED.replace("GOODSIG", "EXPKEYSIG")
    forged = VENDOR_SIGNED.replace("GOODSIG", "BADSIG")

    assert _judge(outcome(expired), frozenset({VENDOR}), "ignore").reason is None
    assert _judge(outcome(forged), frozenset({VENDOR}), "ignore").reason == (
        Reason.PGP_BAD_SIGNATURE
    )
