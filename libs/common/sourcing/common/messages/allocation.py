"""Messages of the call-allocation lane beyond the shared assign-current request."""

from __future__ import annotations
