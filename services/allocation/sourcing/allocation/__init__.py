"""The call-allocation service: gives callers their next call task."""
