"""Mesos RecordIO framing (PROTOCOLS.md §1): "<decimal length>\\n<data>" records
back to back, no trailing newline, no CR. encode() frames one record; Decoder
takes a byte stream cut anywhere and returns the complete records."""

# Cap on one record the decoder accepts, so a hostile or broken length header
# cannot make a test allocate gigabytes.
RECORD_MAX = 16 * 1024 * 1024
# A uint64 has at most 20 decimal digits.
HEADER_DIGITS_MAX = 20


class RecordIOError(ValueError):
    """Malformed stream; the message says what and at which byte offset."""


def encode(data):
    """One framed record: the decimal length, a newline, then the data."""
    data = bytes(data)
    return b"%d\n" % len(data) + data


class Decoder:
    """Incremental RecordIO decoder.

    feed() accepts any slicing of the stream and returns the records it
    completed. Like the reference decoder it fails for good at the first
    malformed header (non-digit, too many digits, over max_record); unlike it,
    empty header lines are skipped, as the Mesos docs' pseudo-code does.
    """

    def __init__(self, max_record=RECORD_MAX):
        self.max_record = max_record
        self._header = bytearray()
        self._need = None  # bytes of the current record still to read, None in a header
        self._record = bytearray()
        self.offset = 0  # bytes consumed since the stream started
        self.records = 0  # records delivered
        self.error = None

    def feed(self, data):
        """Consumes data; returns a list of complete records (bytes).
        Raises RecordIOError on a malformed stream, and on every call after."""
        if self.error is not None:
            raise RecordIOError(self.error)
        out = []
        view = memoryview(bytes(data))
        i = 0
        while i < len(view):
            if self._need is None:
                b = view[i]
                if b == 0x0A:  # '\n'
                    if self._header:
                        self._start_record(self.offset + i)
                        if self._need == 0:
                            out.append(b"")
                            self._finish()
                elif 0x30 <= b <= 0x39 and len(self._header) < HEADER_DIGITS_MAX:
                    self._header.append(b)
                else:
                    self._fail(b, i)
                i += 1
            else:
                take = min(self._need, len(view) - i)
                self._record += view[i : i + take]
                self._need -= take
                i += take
                if self._need == 0:
                    out.append(bytes(self._record))
                    self._finish()
        self.offset += len(view)
        return out

    @property
    def at_boundary(self):
        """True when the stream so far ends cleanly between records."""
        return self.error is None and self._need is None and not self._header

    def _start_record(self, newline_at):
        length = int(self._header)
        if length > self.max_record:
            self.error = (f"record {self.records + 1} of {length} bytes is over the {self.max_record}-byte cap "
                          f"(header ending at byte {newline_at})")
            raise RecordIOError(self.error)
        self._header.clear()
        self._need = length

    def _finish(self):
        self._record.clear()
        self._need = None
        self.records += 1

    def _fail(self, b, i):
        if 0x30 <= b <= 0x39:
            what = f"length header longer than {HEADER_DIGITS_MAX} digits"
        else:
            what = f"unexpected byte 0x{b:02x} in a length header"
        self.error = f"{what} at byte {self.offset + i} (record {self.records + 1})"
        raise RecordIOError(self.error)
