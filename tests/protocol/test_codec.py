import math

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocol as p
from protocol.limits import MAX_CHAT_LEN, MAX_HOLD_TICKS, MAX_INBOUND_FRAME, MAX_NAME_LEN

STATE = p.EntityState(1234, 5678, 9000, 1)
SAMPLES: list[p.Message] = [
    p.Hello(p.PROTOCOL_VERSION, "Aigerim", 0x3366FF, 2, None, None),
    p.Hello(p.PROTOCOL_VERSION, "Budi", 0xFFFFFF, 0, "tok-123", "kz-honey:abc"),
    p.Input(7, 0.6, -0.8, 1.5, True),
    p.Input(8, 0.0, 1.0, 0.0, False, MAX_HOLD_TICKS),
    p.Chat(p.Channel.BOOTH, "Is the honey organic?"),
    p.Ping(12.5),
    p.Order("kz-honey", "KZ-HONEY-500", 2, "order-key-1"),
    p.OrderPaid("ord-1"),
    p.CancelOrder("ord-1"),
    p.QueryStock("kz-honey"),
    p.QueryInventory(),
    p.Bye(),
    p.Report(7, "spam in the aisle"),
    p.LinkAccount("ap1.acct_1.1700000000.00ff"),
    p.Hello(p.PROTOCOL_VERSION, "Li Wei", 0x336699, 1, None, None, "v1.vis_1.mac", "TICKET-1"),
    p.Welcome("s1", 5, 20, 3.25, "resume", 20.0, p.OwnState.of(1, STATE), "http://127.0.0.1:8766", {"halls": []},
              "vis_1", "v1.vis_1.mac", "Li Wei #K3F9"),
    p.Refused("name_taken", "someone called 'Aru' is here already"),
    p.Snapshot(42, 2.1, 7, p.OwnState.of(0, STATE), (11, 12),
               (p.EntityInfo(9, "Nia", 0x00FF00, 1, None, STATE), p.EntityInfo(10, "Ola", 0xFF0000, 0, "ng-shea", STATE)),
               (9, 3, -4, 65535 - 32768, 2)),
    p.ChatLine(0, 9, "Nia", "hello", None, 3.0),
    p.Pong(12.5, 99.0),
    p.Error("bad_field", "Input.move_x: must be finite", 2),
    p.Closing("shutdown", "the expo is closing"),
    p.OrderStatus("o1", "k1", "pending_payment", "kz-honey", "KZ-HONEY-500", 1, "4500.00", "KZT", "pi_1", 120.0, ""),
    p.Receipt("o1", "kz-honey", "KZ-HONEY-500", "Mountain honey", 1, "4500.00", "KZT", "pi_1", 130.0),
    p.Stock("kz-honey", (("KZ-HONEY-500", 40),)),
    p.BoothEffect("kz-honey", "sale", 9),
    p.Inventory((("kz-honey", "KZ-HONEY-500", "Mountain honey", 1),)),
    p.ExpoUpdate({"halls": [], "booths": []}),
    p.SetCard("Li Wei", "Silk Co", "CN", "Buyer", "zh-Hans", "Asia/Shanghai", "li@example.cn", None),
    p.OfferCard(9),
    p.AnswerCard("xch_1", True),
    p.ListSlots("kz-honey"),
    p.BookSlot("slot_1"),
    p.CancelBooking("bkg_1"),
    p.RescheduleBooking("bkg_1", "slot_2"),
    p.PublishSlot(1_790_000_000.0, 15),
    p.ViewProduct("kz-honey", "KZ-HONEY-500"),
    p.CardSaved(("Li Wei", "Silk Co", "CN", "Buyer", "zh-Hans", "Asia/Shanghai", "li@example.cn", None)),
    p.CardOffered("xch_1", 9, "Nia", "kz-honey", 119.5),
    p.CardAnswer("xch_1", "accepted", "cards exchanged"),
    p.CardShown("xch_1", 9, ("Li Wei", "Silk Co", "CN", "Buyer", "zh-Hans", "Asia/Shanghai", "li@example.cn", None)),
    p.Slots("kz-honey", (("slot_1", "Aigerim", 1_790_000_000.0, 15, False),)),
    p.Booking("bkg_1", "slot_1", "kz-honey", "Aigerim", "Li Wei", 1_790_000_000.0, 15, "booked"),
    p.MeetingReminder("bkg_1", "kz-honey", "Aigerim", 1_790_000_000.0, 15),
    p.AccountLinked("acct_1"),
    p.Hello(p.PROTOCOL_VERSION, "Marco", 0x336699, 1, None, None, "v1.vis_1.mac", None, "seat-token_1"),
    p.Transfer("ws://10.0.0.2:8765/", "seat-token_1", 14.5, "maritime"),
    p.Servers(("ws://10.0.0.2:8765/", "ws://10.0.0.3:8765/")),
    p.DirectMessage("Shams #K3F9", "the caravan leaves at dawn"),
    p.FindPerson("Shams"),
    p.DirectLine("Rumi", "the caravan leaves at dawn", True, 12.5),
    p.PersonFound("Shams", True, "maritime"),
    p.RequestQuote("kz-honey", "HONEY-1", 1200, "FOB", "CN", "rfq-1"),
    p.SendQuotation("po_1", ((1, "5000"), (1000, "3900.50")), "KZT", 86400.0, 21, 30),
    p.PlacePurchaseOrder("po_1", "esc_1"),
    p.ConfirmShipment("po_1"),
    p.ConfirmDelivery("po_1"),
    p.CancelDeal("po_1"),
    p.QueryDeals(),
    p.DealStatus("po_1", "rfq-1", "ordered", "kz-honey", "HONEY-1", 1200, "FOB", "CN", ((1, "5000"), (1000, "3900.50")),
                 "KZT", "3900.50", "4680600.00", "1404180.00", 140418000, 1_790_000_000.0, 21, "acct_1", "esc_1",
                 "0b5c7a4e-1d1f-4c43-9f5e-3a6a0e1f2b3c", None, "purchase order placed"),
    p.QueryCollectibles(),
    p.Collectibles((("edn_1-7", "Mountain honey: certificate", "HONEY-1", "2026-05", "Altai, KZ", "kz-honey", "ord_1",
                     "http://127.0.0.1:8766/v1/items/edn_1-7"),)),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message):
    data = p.encode(message)
    decode = p.decode_client if message.TYPE < 64 else p.decode_server
    assert decode(data) == message


def test_catalogue_has_every_sample_type():
    assert {type(m) for m in SAMPLES} == set(p.CLIENT_MESSAGES.values()) | set(p.SERVER_MESSAGES.values())


def frame(*items) -> bytes:
    return msgpack.packb(list(items), use_bin_type=True)


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", p.ErrorCode.BAD_FRAME),
        (b"\xc1", p.ErrorCode.BAD_FRAME),  # never-used msgpack byte
        (msgpack.packb({"type": 1}), p.ErrorCode.BAD_FRAME),  # a map, not an array
        (frame(), p.ErrorCode.BAD_FRAME),
        (frame("hello"), p.ErrorCode.BAD_FRAME),
        (frame(2, 1, 0.0, 0.0, 0.0, False, 1) + b"\x00", p.ErrorCode.BAD_FRAME),  # trailing bytes
        (b"\xd4\x01\x00", p.ErrorCode.BAD_FRAME),  # ext type
        (frame(99), p.ErrorCode.UNKNOWN_TYPE),
        (frame(64, "s", 1, 20, 0.0, "t", 20.0, [0, 0, 0, 0, 0], None, {}), p.ErrorCode.UNKNOWN_TYPE),  # server type from a client
        (frame(2, 1, 0.0, 0.0, 0.0, False), p.ErrorCode.BAD_FIELD),  # a field missing
        (frame(2, 1, 0.0, 0.0, 0.0, False, 1, 1), p.ErrorCode.BAD_FIELD),  # a field too many
        (frame(2, 1, math.nan, 0.0, 0.0, False, 1), p.ErrorCode.BAD_FIELD),
        (frame(2, 1, math.inf, 0.0, 0.0, False, 1), p.ErrorCode.BAD_FIELD),
        (frame(2, 1, 1.5, 0.0, 0.0, False, 1), p.ErrorCode.BAD_FIELD),
        (frame(2, -1, 0.0, 0.0, 0.0, False, 1), p.ErrorCode.BAD_FIELD),
        (frame(2, True, 0.0, 0.0, 0.0, False, 1), p.ErrorCode.BAD_FIELD),  # bool is not an int
        (frame(2, 1, "0", 0.0, 0.0, False, 1), p.ErrorCode.BAD_FIELD),
        (frame(2, 1, 0.0, 0.0, 0.0, 1, 1), p.ErrorCode.BAD_FIELD),  # int is not a bool
        (frame(2, 1, 0.0, 0.0, 0.0, False, 0), p.ErrorCode.BAD_FIELD),  # holds for no tick
        (frame(2, 1, 0.0, 0.0, 0.0, False, MAX_HOLD_TICKS + 1), p.ErrorCode.BAD_FIELD),  # too long a hold
        (frame(3, 0, "x" * (MAX_CHAT_LEN + 1)), p.ErrorCode.BAD_FIELD),
        (frame(3, 0, "bell\x07"), p.ErrorCode.BAD_FIELD),
        (frame(3, 0, "rtl\u202eoverride"), p.ErrorCode.BAD_FIELD),
        (frame(3, 0, "   "), p.ErrorCode.BAD_FIELD),  # empty once stripped
        (frame(3, 3, "hi"), p.ErrorCode.BAD_FIELD),  # no channel 3
        (frame(1, p.PROTOCOL_VERSION, "a" * (MAX_NAME_LEN + 1), 0, 0, None, None, None, None, None), p.ErrorCode.BAD_FIELD),
        (frame(1, p.PROTOCOL_VERSION, "Bo", 0x1000000, 0, None, None, None, None, None), p.ErrorCode.BAD_FIELD),
        (frame(1, p.PROTOCOL_VERSION, "Bo", 0, 0, b"bytes", None, None, None, None), p.ErrorCode.BAD_FIELD),
        (frame(5, "booth", "sku", 0, "key"), p.ErrorCode.BAD_FIELD),  # qty 0
        (b"\x91" * 2000 + b"\x01", p.ErrorCode.BAD_FRAME),  # deep nesting
        (b"\x00" * (MAX_INBOUND_FRAME + 1), p.ErrorCode.TOO_LARGE),
        ("text frame", p.ErrorCode.BAD_FRAME),
    ],
)
def test_bad_frames_raise_protocol_error_with_code(data, code):
    with pytest.raises(p.ProtocolError) as info:
        p.decode_client(data)
    assert info.value.code is code
    assert info.value.message


def test_invalid_utf8_is_a_bad_frame():
    data = b"\x93\x03\x00\xa2\xff\xfe"
    with pytest.raises(p.ProtocolError) as info:
        p.decode_client(data)
    assert info.value.code is p.ErrorCode.BAD_FRAME


def test_peek_type_names_the_message_of_a_bad_frame():
    assert p.peek_type(frame(2, 1, math.nan, 0, 0, False)) == 2
    assert p.peek_type(b"\xc1") == 0
    assert p.peek_type(b"") == 0


def test_a_hello_may_leave_out_the_field_added_for_clusters():
    """A client written before Hello.transfer existed sends 8 fields: still a Hello."""
    message = p.decode_client(frame(1, p.PROTOCOL_VERSION, "Aru", 0, 0, None, None, None, None))
    assert isinstance(message, p.Hello) and message.transfer is None
    with pytest.raises(p.ProtocolError):  # but not fewer than the published eight
        p.decode_client(frame(1, p.PROTOCOL_VERSION, "Aru", 0, 0, None, None, None))


def test_names_are_stripped():
    message = p.decode_client(frame(1, p.PROTOCOL_VERSION, "  Aru  ", 0, 0, None, None, None, None, None))
    assert message.name == "Aru"


def test_quantisation_round_trip_and_yaw_wrap():
    assert p.quantise_position(12.344) == 1234
    assert p.quantise_position(-0.006) == -1
    assert p.dequantise_position(p.quantise_position(7.5)) == 7.5
    assert p.quantise_yaw(2 * math.pi) == 0
    assert p.quantise_yaw(-math.pi / 2) == 3 * 65536 // 4
    assert p.wrap_yaw_delta(65535) == -1
    assert p.wrap_yaw_delta(-65535) == 1
    assert p.wrap_yaw_delta(32768) == -32768


mutations = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6)


@settings(max_examples=400, deadline=None)
@given(index=st.integers(0, len(SAMPLES) - 1), edits=mutations, cut=st.integers(0, 300))
def test_mutated_frames_never_raise_anything_but_protocol_error(index, edits, cut):
    data = bytearray(p.encode(SAMPLES[index]))
    for pos, value in edits:
        if data:
            data[pos % len(data)] = value
    data = bytes(data[: max(0, len(data) - cut % 4)])
    for decode in (p.decode_client, p.decode_server):
        try:
            decode(data)
        except p.ProtocolError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_protocol_error(data):
    try:
        p.decode_client(data)
    except p.ProtocolError:
        pass


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(type_code=st.sampled_from(sorted(p.CLIENT_MESSAGES)), fields=st.lists(json_like, max_size=7))
def test_well_formed_msgpack_with_random_fields_is_validated(type_code, fields):
    try:
        message = p.decode_client(frame(type_code, *fields))
    except p.ProtocolError:
        return
    assert p.decode_client(p.encode(message)) == message


def test_a_hello_of_another_version_is_judged_by_its_version_alone():
    with pytest.raises(p.ProtocolError) as old:
        p.decode_client(frame(1, p.PROTOCOL_VERSION - 1, "Aru", 0, 0, None, None))  # fewer fields than ours
    assert old.value.code is p.ErrorCode.VERSION_MISMATCH
    with pytest.raises(p.ProtocolError) as ours:
        p.decode_client(frame(1, p.PROTOCOL_VERSION, "Aru", 0, 0, None, None))
    assert ours.value.code is p.ErrorCode.BAD_FIELD
