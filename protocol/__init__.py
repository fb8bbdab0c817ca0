"""The Silk Road Expo wire protocol: message catalogue, codec, limits. Sans-I/O.

See protocol/README.md for the specification.
"""

from .codec import decode_client, decode_server, encode, peek_type
from .collectibles import *  # noqa: F403  (certificates the server issued at the bank)
from .deals import *  # noqa: F403  (B2B deals: RFQ, quotation, purchase order)
from .errors import ErrorCode, ProtocolError
from .limits import PROTOCOL_VERSION
from .messages import *  # noqa: F403
from .messages import CLIENT_MESSAGES, SERVER_MESSAGES, Message
from .people import *  # noqa: F403  (cards, exchange, meetings: registered in the same tables)
from .quantise import dequantise_position, dequantise_yaw, quantise_position, quantise_yaw, wrap_yaw_delta

__all__ = [
    "PROTOCOL_VERSION",
    "CLIENT_MESSAGES",
    "SERVER_MESSAGES",
    "ErrorCode",
    "Message",
    "ProtocolError",
    "decode_client",
    "decode_server",
    "encode",
    "peek_type",
    "quantise_position",
    "dequantise_position",
    "quantise_yaw",
    "dequantise_yaw",
    "wrap_yaw_delta",
]
