"""The gift desk (sans-I/O): the real-name form when the bank has not checked you, the choice,
the question before the certificate leaves, and each refusal the bank can still make in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from client.desktop import gifting as gf
from client.desktop.collectibles import arrival, giver

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
LI = gf.Contact("acct_li", "Li Wei", verified=True)
OMAR = gf.Contact("acct_omar", "Omar", verified=False)
HONEY = gf.Holding("ed1-001", "Mountain honey: certificate of origin", NOW - timedelta(days=1))
TEA = gf.Holding("ed2-007", "Ceylon tea: certificate of origin", NOW + timedelta(days=30))


def desk() -> gf.GiftDesk:
    keys = iter(f"key-{n}" for n in range(100))
    return gf.GiftDesk(lambda: NOW, lambda: next(keys))


def test_a_verified_holder_chooses_confirms_and_the_gift_goes_once() -> None:
    d = desk()
    assert d.open() == [gf.LoadGiftInfo()] and d.open() == []  # one load at a time
    d.loaded(True, [OMAR, LI], [HONEY])
    assert d.stage is gf.Stage.CHOOSING and "Omar has not passed" in d.status
    assert d.enter() == [] and d.stage is gf.Stage.CHOOSING  # the bank would refuse: not asked
    d.step_contact(1)
    assert d.status == "" and "To Li Wei (real name checked), contact 2 of 2" in d.lines()
    assert d.enter() == [] and d.stage is gf.Stage.CONFIRMING
    assert "Li Wei" in d.question() and HONEY.serial in d.question()
    d.escape()
    assert d.stage is gf.Stage.CHOOSING  # Esc at the question goes back, not away
    d.enter()
    assert d.enter() == [gf.SendGift(HONEY.serial, "acct_li", "key-0")]
    assert d.enter() == [] and d.stage is gf.Stage.SENDING  # no second gift while the first is out
    d.escape()
    assert d.stage is gf.Stage.SENDING  # nor does Esc lose its answer
    d.gifted(None)
    assert (d.stage, d.status, d.status_good, d.done) == (gf.Stage.CLOSED, f"No. {HONEY.serial} is Li Wei's now.", True, True)
    assert d.holdings == []


def test_an_unchecked_holder_fills_the_real_name_form_first() -> None:
    d = desk()
    d.open()
    d.loaded(False, [LI], [HONEY])
    assert d.stage is gf.Stage.REAL_NAME
    assert d.real_name("Aigerim Nurlanovna", " ", "kz", "n1234567") == [] and d.status == "Fill in all four fields."
    [submit] = d.real_name(" Aigerim Nurlanovna ", "1990-04-12", "kz", "n1234567")
    assert submit == gf.SubmitRealName("Aigerim Nurlanovna", "1990-04-12", "KZ", "N1234567", "key-0")
    d.real_name_done(gf.Refusal("kyc_invalid", "the holder must be 18 or older", "date_of_birth"))
    assert (d.stage, d.field) == (gf.Stage.REAL_NAME, "date_of_birth")  # in the interface's words, at the field
    assert d.status == "Your date of birth as YYYY-MM-DD: the holder must be 18 or older."
    d.real_name("Aigerim Nurlanovna", "1990-04-12", "K", "N12345678")
    d.real_name_done(gf.Refusal("invalid_request", "body.country: String should have at least 2 characters", "country"))
    assert (d.field, d.status) == ("country", "Your country: its two-letter code, e.g. KZ, CN or MY.")
    d.real_name("Aigerim Nurlanovna", "1990-04-12", "KZ", "N12340000")
    d.real_name_done(gf.Refusal("kyc_refused", "document N12340000 is reported lost or stolen (mock registry)"))
    assert d.field is None and d.status.startswith("The bank's registry refused this document")
    d.real_name("Aigerim Nurlanovna", "1990-04-12", "KZ", "N12345679")
    d.real_name_done(gf.Refusal("rate_limited", "slow down"))
    assert d.status == "The bank did not take it: slow down"
    d.real_name("Aigerim Nurlanovna", "1990-04-12", "KZ", "N12345678")
    assert not d.status_good
    d.real_name_done(None)
    assert (d.stage, d.verified, d.status, d.status_good) == (gf.Stage.CHOOSING, True, "Your real name is checked.", True)


def test_what_the_bank_said_is_said_before_and_after() -> None:
    d = desk()
    d.open()
    d.loaded(True, [], [HONEY])
    assert "exchange cards with someone first" in d.status and d.enter() == []
    d.escape()
    d.open()
    d.loaded(True, [LI], [HONEY, TEA])
    d.step_item(1)
    assert d.status == f"No. {TEA.serial} can be given from 2027-07-01: a certificate is held a while first."
    d.step_item(1)  # round again to the honey
    d.enter()
    d.enter()
    for code, says in (("not_a_contact", "no card exchange between you and Li Wei"),
                       ("kyc_required", "Li Wei has not passed"), ("not_holder", "no longer yours"),
                       ("unavailable", "The bank did not take it: timed out")):
        d.gifted(gf.Refusal(code, "timed out"))
        assert d.stage is gf.Stage.CHOOSING and says in d.status, (code, d.status)
        d.enter()
        assert d.enter()[0].key != "key-0"  # a new yes, a new key
    d.gifted(None)
    assert [h.serial for h in d.holdings] == [TEA.serial]


def test_nothing_to_give_or_no_bank_closes_with_a_word() -> None:
    d = desk()
    d.open()
    d.loaded(False, [LI], [])  # nothing to give, not checked: the check, so that a contact can give
    assert d.stage is gf.Stage.REAL_NAME
    d.real_name("Li Wei", "1988-02-03", "CN", "E12345678")
    d.real_name_done(None)
    assert (d.stage, d.status_good) == (gf.Stage.CLOSED, True) and "contacts can give you" in d.status
    d.open()
    d.loaded(True, [LI], [])
    assert (d.stage, d.status) == (gf.Stage.CLOSED, "You hold no certificate to give.")
    d.open()
    d.load_failed("connection refused")
    assert (d.stage, d.status) == (gf.Stage.CLOSED, "The bank did not answer: connection refused")
    d.gifted(None)  # a late answer to nothing changes nothing
    assert d.stage is gf.Stage.CLOSED


def test_a_new_certificate_says_who_gave_it() -> None:
    """From the item's provenance at the bank and the contact list's names."""
    names = {"acct_li": "Li Wei"}
    assert giver([("issue", "bank:mint:ed1")], names) is None  # a purchase's certificate
    assert giver([("issue", "bank:mint:ed1"), ("gift", "acct_li")], names) == "Li Wei"
    assert giver([("issue", "bank:mint:ed1"), ("gift", "acct_gone")], names) == "a contact"
    assert giver([], names) is None
    assert arrival("Honey", "ed1-001", None) == "A new certificate: Honey, No. ed1-001. I shows it."
    assert arrival("Honey", "ed1-001", "Li Wei") == "Li Wei gave you a certificate: Honey, No. ed1-001. I shows it."
