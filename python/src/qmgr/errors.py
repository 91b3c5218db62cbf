"""QmgrError: a failed call, with its HRESULT and the library's description of it."""

from __future__ import annotations

from .hresults import name_of


class HResult(int):
    """An HRESULT as an unsigned 32-bit number (``0x80070057``), with its name if known.

    It compares equal to the plain number, so ``error.hresult == hresults.E_INVALIDARG``.
    """

    def __new__(cls, code: int) -> HResult:
        return super().__new__(cls, code & 0xFFFFFFFF)

    @property
    def name(self) -> str | None:
        """The code's name (``"E_INVALIDARG"``), or None when it has none here."""
        return name_of(self)

    @property
    def signed(self) -> int:
        """The code as C's signed HRESULT holds it."""
        return self - (1 << 32) if self & 0x80000000 else int(self)

    @property
    def failed(self) -> bool:
        """Whether the code is a failure (its severity bit is set)."""
        return bool(self & 0x80000000)

    def __str__(self) -> str:
        name = self.name
        return f"{name} (0x{int(self):08X})" if name else f"0x{int(self):08X}"

    def __repr__(self) -> str:
        return f"HResult(0x{int(self):08X}{', ' + self.name if self.name else ''})"


class QmgrError(Exception):
    """A call into libqmgr failed.

    ``hresult`` is the code (an ``HResult``: an int with a ``name``), ``description`` what
    the library said about this failure (which path, which limit), and ``operation`` the
    method that failed.
    """

    def __init__(self, hresult: int, description: str = "", operation: str = "") -> None:
        self.hresult = HResult(hresult)
        self.description = description.strip()
        self.operation = operation
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.operation}: " if self.operation else ""
        what = f": {self.description}" if self.description else ""
        return f"{where}{self.hresult}{what}"

    def __repr__(self) -> str:
        return (
            f"QmgrError({self.hresult!r}, description={self.description!r}, "
            f"operation={self.operation!r})"
        )

    def __reduce__(self) -> tuple[type, tuple[int, str, str]]:
        return (type(self), (int(self.hresult), self.description, self.operation))
