"""rrdbg.rsp: a sans-IO GDB Remote Serial Protocol core (stub side), in the manner of h11.

Layers, bottom up: ``hexcodec`` (hex, numbers, escapes, run lengths) <- ``framing``
(``$payload#cs`` byte state machine) <- ``requests``/``replies`` (typed values) <-
``parsers``/``table`` (the packet table as data) <- ``connection``
(``RspConnection``: acks, no-ack mode, interrupts).

Invariant: this package imports only the stdlib and ``rrdbg.errors``: no sockets,
no trio, no Unicorn, no I/O.  The caller moves the bytes.
"""

from __future__ import annotations

from rrdbg.rsp.connection import DEFAULT_CAPABILITIES as DEFAULT_CAPABILITIES
from rrdbg.rsp.connection import DEFAULT_PACKET_SIZE as DEFAULT_PACKET_SIZE
from rrdbg.rsp.connection import RspConnection as RspConnection
from rrdbg.rsp.framing import checksum as checksum
from rrdbg.rsp.framing import frame as frame
from rrdbg.rsp.hexcodec import hex_decode as hex_decode
from rrdbg.rsp.hexcodec import hex_encode as hex_encode
from rrdbg.rsp.hexcodec import le_bytes as le_bytes
from rrdbg.rsp.hexcodec import le_int as le_int
from rrdbg.rsp.replies import BinaryData as BinaryData
from rrdbg.rsp.replies import ConsoleOutput as ConsoleOutput
from rrdbg.rsp.replies import Empty as Empty
from rrdbg.rsp.replies import ErrorReply as ErrorReply
from rrdbg.rsp.replies import Execd as Execd
from rrdbg.rsp.replies import Exited as Exited
from rrdbg.rsp.replies import FileResult as FileResult
from rrdbg.rsp.replies import Forked as Forked
from rrdbg.rsp.replies import HexData as HexData
from rrdbg.rsp.replies import HwBreak as HwBreak
from rrdbg.rsp.replies import Ok as Ok
from rrdbg.rsp.replies import RawReply as RawReply
from rrdbg.rsp.replies import ReplayLog as ReplayLog
from rrdbg.rsp.replies import Reply as Reply
from rrdbg.rsp.replies import StopReason as StopReason
from rrdbg.rsp.replies import StopReply as StopReply
from rrdbg.rsp.replies import SwBreak as SwBreak
from rrdbg.rsp.replies import Terminated as Terminated
from rrdbg.rsp.replies import VForkDone as VForkDone
from rrdbg.rsp.replies import Watch as Watch
from rrdbg.rsp.replies import WatchKind as WatchKind
from rrdbg.rsp.replies import XferChunk as XferChunk
from rrdbg.rsp.replies import encode_reply as encode_reply
from rrdbg.rsp.requests import Detach as Detach
from rrdbg.rsp.requests import Direction as Direction
from rrdbg.rsp.requests import FileClose as FileClose
from rrdbg.rsp.requests import FileFstat as FileFstat
from rrdbg.rsp.requests import FileOpen as FileOpen
from rrdbg.rsp.requests import FileOperation as FileOperation
from rrdbg.rsp.requests import FilePread as FilePread
from rrdbg.rsp.requests import FileSetFs as FileSetFs
from rrdbg.rsp.requests import InsertPoint as InsertPoint
from rrdbg.rsp.requests import Interrupt as Interrupt
from rrdbg.rsp.requests import Kill as Kill
from rrdbg.rsp.requests import MalformedPacket as MalformedPacket
from rrdbg.rsp.requests import MonitorCommand as MonitorCommand
from rrdbg.rsp.requests import MustReplyEmpty as MustReplyEmpty
from rrdbg.rsp.requests import PassSignals as PassSignals
from rrdbg.rsp.requests import PointKind as PointKind
from rrdbg.rsp.requests import QueryAttached as QueryAttached
from rrdbg.rsp.requests import QueryCurrentThread as QueryCurrentThread
from rrdbg.rsp.requests import QueryHaltReason as QueryHaltReason
from rrdbg.rsp.requests import QueryHostInfo as QueryHostInfo
from rrdbg.rsp.requests import QueryOffsets as QueryOffsets
from rrdbg.rsp.requests import QueryProcessInfo as QueryProcessInfo
from rrdbg.rsp.requests import QuerySupported as QuerySupported
from rrdbg.rsp.requests import QuerySymbol as QuerySymbol
from rrdbg.rsp.requests import QueryThreadInfo as QueryThreadInfo
from rrdbg.rsp.requests import QueryTraceStatus as QueryTraceStatus
from rrdbg.rsp.requests import ReadMemory as ReadMemory
from rrdbg.rsp.requests import ReadRegister as ReadRegister
from rrdbg.rsp.requests import ReadRegisters as ReadRegisters
from rrdbg.rsp.requests import ReadXfer as ReadXfer
from rrdbg.rsp.requests import RemovePoint as RemovePoint
from rrdbg.rsp.requests import Request as Request
from rrdbg.rsp.requests import Resume as Resume
from rrdbg.rsp.requests import ResumeAction as ResumeAction
from rrdbg.rsp.requests import SetThread as SetThread
from rrdbg.rsp.requests import StartNoAckMode as StartNoAckMode
from rrdbg.rsp.requests import ThreadAlive as ThreadAlive
from rrdbg.rsp.requests import UnknownPacket as UnknownPacket
from rrdbg.rsp.requests import VCont as VCont
from rrdbg.rsp.requests import VContAction as VContAction
from rrdbg.rsp.requests import VContQuery as VContQuery
from rrdbg.rsp.requests import VKill as VKill
from rrdbg.rsp.requests import WriteMemory as WriteMemory
from rrdbg.rsp.requests import WriteRegister as WriteRegister
from rrdbg.rsp.requests import WriteRegisters as WriteRegisters
from rrdbg.rsp.table import ALL as ALL
from rrdbg.rsp.table import PACKETS as PACKETS
from rrdbg.rsp.table import Capability as Capability
from rrdbg.rsp.table import PacketSpec as PacketSpec
from rrdbg.rsp.table import answers_with_stop_reply as answers_with_stop_reply
from rrdbg.rsp.table import parse_request as parse_request
from rrdbg.rsp.table import supported_features as supported_features
