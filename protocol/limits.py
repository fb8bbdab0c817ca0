"""Numbers both ends agree on; protocol/README.md documents each one."""

PROTOCOL_VERSION = 4  # 2: Input.ticks (an input holds for several ticks); 3: one Snapshot a tick with leaves and enters; 4: a delta names its entity by the gap from the previous delta's

MAX_INBOUND_FRAME = 4096  # bytes, a client frame; the server refuses larger ones
MAX_NAME_LEN = 24  # characters of a display name
MIN_NAME_LEN = 2
MAX_CHAT_LEN = 280  # characters of a chat line
MAX_TOKEN_LEN = 128  # resume tokens, order keys, ids
MAX_ID_LEN = 64  # booth ids and skus
MAX_TICKET_LEN = 64  # characters of a ticket code
MAX_PROOF_LEN = 512  # characters of the bank's account proof
MAX_ORDER_QTY = 99
MAX_SEQ = 2**32 - 1  # input sequence numbers wrap here
MAX_HOLD_TICKS = 20  # ticks one Input may hold for: a second at the default 20 Hz

POSITION_SCALE = 100  # quantised positions are centimetres
YAW_STEPS = 65536  # quantised yaw: a full turn in this many steps
MAX_COORD = 10_000.0  # metres; no hall is larger

CHAT_PROXIMITY_RADIUS = 15.0  # metres
BOOTH_CHANNEL_MARGIN = 3.0  # metres around a booth's footprint that count as "at the booth"
MAX_REPORT_LEN = 200  # characters of the reason in a visitor's Report
