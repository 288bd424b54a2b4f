"""A small reader of Postern queue files (postern-queue(5)), for tests.

A file is a sequence of records: a type byte, the data length as a varint
(7 bits per byte, least significant group first, the high bit set on all
but the last byte), then the data.  This reader is independent of the C
code on purpose: it is what the tests compare the C writer against.

    qf = QueueFile.read(path)
    qf.sender, qf.recipients, qf.attrs, qf.content, qf.complete
"""
import os

# Record types (postern-queue(5)).
SIZE = "C"
TIME = "T"
WARN = "W"
FULLNAME = "F"
SENDER = "S"
ATTR = "A"
DSN_ORCPT = "o"
DSN_NOTIFY = "n"
ORIG_RCPT = "O"
RCPT = "R"
DONE = "D"
CONTENT = "M"
DATA = "B"
CONTENT_END = "X"
END = "E"

KNOWN = set("CTWFSAonORDMBXE")

READY_MODE = 0o700

NOTIFY_NEVER = 1
NOTIFY_SUCCESS = 2
NOTIFY_DELAY = 4
NOTIFY_FAILURE = 8


class QueueFileError(Exception):
    pass


def parse_records(data):
    """[(type_char, bytes, offset)] of every record; raises QueueFileError
    on a truncated record or a bad length."""
    records = []
    pos = 0
    while pos < len(data):
        start = pos
        rtype = chr(data[pos])
        pos += 1
        length = 0
        shift = 0
        while True:
            if pos >= len(data):
                raise QueueFileError(f"truncated record header at {start}")
            if shift > 28:
                raise QueueFileError(f"bad record length at {start}")
            b = data[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if pos + length > len(data):
            raise QueueFileError(
                f"truncated record {rtype!r} at {start}: {length} bytes "
                f"announced, {len(data) - pos} present")
        records.append((rtype, data[pos:pos + length], start))
        pos += length
    return records


class Recipient:
    def __init__(self, address, orig=None, orcpt=None, notify=0, done=False,
                 offset=0):
        self.address = address
        self.orig = orig
        self.orcpt = orcpt
        self.notify = notify
        self.done = done
        self.offset = offset

    def __repr__(self):
        return (f"Recipient({self.address!r}, orig={self.orig!r}, "
                f"orcpt={self.orcpt!r}, notify={self.notify})")


class QueueFile:
    """The parsed contents of one queue file.

    records     [(type, bytes, offset)] in file order
    size        (message_size, content_offset, nrcpt, flags) or None
    arrival     (sec, usec) or None
    warn_time   the W record's value, or None
    sender      str (decoded as UTF-8, surrogateescape) or None
    attrs       {name: value}
    recipients  [Recipient]
    content     bytes of all B records (headers and body, LF line ends)
    complete    the file has the C...M...X...E shape of a finished file
    mode        the file's permission bits (0o700: ready)
    """

    def __init__(self, data, name="", mode=None):
        self.name = name
        self.raw = data
        self.mode = mode
        self.records = parse_records(data)
        self.size = None
        self.arrival = None
        self.sender = None
        self.fullname = None
        self.warn_time = None
        self.unknown = []               # envelope records of other types
        self.attrs = {}
        self.recipients = []
        chunks = []
        pending = {}
        state = "envelope"
        seen = []
        for rtype, value, offset in self.records:
            seen.append(rtype)
            text = value.decode("utf-8", "surrogateescape")
            if state == "envelope":
                if rtype == SIZE:
                    nums = text.split()
                    if len(nums) != 4:
                        raise QueueFileError(f"bad size record {text!r}")
                    self.size = tuple(int(n) for n in nums)
                elif rtype == TIME:
                    sec, usec = text.split()
                    self.arrival = (int(sec), int(usec))
                elif rtype == WARN:
                    self.warn_time = int(text)
                elif rtype == FULLNAME:
                    self.fullname = text
                elif rtype == SENDER:
                    self.sender = text
                elif rtype == ATTR:
                    if "=" not in text:
                        raise QueueFileError(f"bad attribute {text!r}")
                    k, v = text.split("=", 1)
                    self.attrs[k] = v
                elif rtype == DSN_ORCPT:
                    pending["orcpt"] = text
                elif rtype == DSN_NOTIFY:
                    pending["notify"] = int(text)
                elif rtype == ORIG_RCPT:
                    pending["orig"] = text
                elif rtype in (RCPT, DONE):
                    self.recipients.append(Recipient(
                        text, pending.get("orig"), pending.get("orcpt"),
                        pending.get("notify", 0), rtype == DONE, offset))
                    pending = {}
                elif rtype == CONTENT:
                    state = "content"
                elif rtype in (DATA, CONTENT_END, END):
                    raise QueueFileError(
                        f"unexpected record {rtype!r} in the envelope")
                else:
                    # A newer envelope record: kept, not interpreted.
                    self.unknown.append((rtype, value))
            elif state == "content":
                if rtype == DATA:
                    chunks.append(value)
                elif rtype == CONTENT_END:
                    state = "after"
                else:
                    raise QueueFileError(
                        f"unexpected record {rtype!r} in the content")
            elif state == "after":
                if rtype == END:
                    state = "end"
                elif rtype not in KNOWN:
                    raise QueueFileError(f"unknown record {rtype!r}")
            else:
                raise QueueFileError(f"record {rtype!r} after the end")
        self.content = b"".join(chunks)
        self.complete = (state == "end" and bool(seen)
                         and seen[0] == SIZE and self.sender is not None)
        self.types = "".join(seen)

    @classmethod
    def read(cls, path):
        with open(path, "rb") as f:
            data = f.read()
        mode = os.stat(path).st_mode & 0o7777
        return cls(data, os.path.basename(path), mode)

    # --- conveniences ---------------------------------------------------
    @property
    def queue_id(self):
        return self.name

    @property
    def rcpt_addresses(self):
        return [r.address for r in self.recipients]

    @property
    def ready(self):
        return self.mode is not None and (self.mode & 0o700) == READY_MODE

    def headers_and_body(self):
        """(header bytes, body bytes) split at the first empty line."""
        content = self.content
        if content.startswith(b"\n"):
            return b"", content[1:]
        idx = content.find(b"\n\n")
        if idx < 0:
            return content, b""
        return content[:idx + 1], content[idx + 2:]

    def headers(self):
        """[(name, value)] of the header section, unfolded."""
        head, _ = self.headers_and_body()
        out = []
        for line in head.split(b"\n"):
            if not line:
                continue
            if line[:1] in (b" ", b"\t") and out:
                name, value = out[-1]
                out[-1] = (name, value + b"\n" + line)
            elif b":" in line:
                name, value = line.split(b":", 1)
                out.append((name.decode("ascii", "replace"), value.lstrip()))
        return [(n, v.decode("utf-8", "surrogateescape")) for n, v in out]

    def header(self, name):
        """The first value of header name, or None."""
        for n, v in self.headers():
            if n.lower() == name.lower():
                return v
        return None

    def body(self):
        return self.headers_and_body()[1]

    def check(self):
        """Raise AssertionError unless this is a complete, consistent file."""
        assert self.complete, f"{self.name}: incomplete ({self.types})"
        assert self.size is not None, f"{self.name}: no size record"
        msize, offset, nrcpt, _flags = self.size
        assert nrcpt == len(self.recipients), (
            f"{self.name}: size record says {nrcpt} recipients, "
            f"file has {len(self.recipients)}")
        assert msize == len(self.content), (
            f"{self.name}: size record says {msize} bytes, content has "
            f"{len(self.content)}")
        cont = [o for t, _, o in self.records if t == CONTENT]
        assert cont and cont[0] == offset, (
            f"{self.name}: content offset {offset}, M record at {cont}")
        return self


def queue_files(directory):
    """Parsed QueueFile of every regular file in directory, by name."""
    out = {}
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return out
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            out[name] = QueueFile.read(path)
    return out


def list_files(directory):
    """Names of the regular files in directory (recursively), sorted."""
    found = []
    for dirpath, _dirs, files in os.walk(directory):
        for name in files:
            found.append(os.path.relpath(os.path.join(dirpath, name),
                                         directory))
    return sorted(found)
