"""Result objects: small typed records whose attributes are named like the JSON fields.

``r.cost``, ``r.remaining``, ``r.rev`` ... A field the answer did not carry is ``None``; the
whole answer stays in ``r.raw`` (so fields added by a newer server are there too, and also
readable as attributes). ``r.fail_open`` is True only for a result the client made up because
genledger could not be reached and the client runs with ``on_unavailable="open"``: such a result
has no charge id and ``None`` counters.
"""


class Result:
    """Base class. Subclasses list their JSON fields in ``_fields``.

    Fields are read from ``raw`` when asked for (an AsyncClient makes tens of thousands of
    results a second; copying every field into each of them would be most of its cost).
    """

    _fields = ()

    def __init__(self, raw=None, fail_open=False, **fields):
        if raw is None:
            raw = {}
        if fields:
            raw = dict(raw, **fields)
        self.raw = raw
        self.fail_open = fail_open

    def __getattr__(self, name):
        # Called only for names not set on the instance: the JSON fields.
        try:
            return self.__dict__["raw"][name]
        except KeyError:
            if name in type(self)._fields:
                return None
            raise AttributeError("%s has no field %r" % (type(self).__name__, name)) from None

    def __eq__(self, other):
        return type(self) is type(other) and self.raw == other.raw and self.fail_open == other.fail_open

    def __repr__(self):
        shown = ", ".join("%s=%r" % (f, getattr(self, f)) for f in self._fields
                          if getattr(self, f) is not None)
        if self.fail_open:
            shown = (shown + ", " if shown else "") + "fail_open=True"
        return "%s(%s)" % (type(self).__name__, shown)

    def to_dict(self):
        """The answer as the server sent it."""
        return dict(self.raw)


def _record(name, fields, doc):
    return type(name, (Result,), {"_fields": tuple(fields.split()), "__doc__": doc})


Charge = _record("Charge", "charge cost remaining user_used rev replayed overage would_refuse",
                 "Result of charge: the charge id (``ch_<n>``), its cost, what is left.")
Quote = _record("Quote", "cost affordable max_quantity max_seconds",
                "Result of quote. ``max_seconds`` is a ``decimal.Decimal`` (exact).")
Reservation = _record("Reservation",
                      "reservation held remaining expires_at rev replayed would_refuse overage",
                      "Result of reserve: the hold id (``rs_<n>``) and what it holds.")
Commit = _record("Commit", "charge cost remaining rev overage",
                 "Result of commit: the charge it became.")
Release = _record("Release", "released remaining rev", "Result of release.")
Refund = _record("Refund", "refunded remaining rev", "Result of refund.")
Workspace = _record(
    "Workspace",
    "workspace limit used reserved remaining region period schedule period_start period_end "
    "granted_remaining plan_priority rollover overage_mode overage overage_limit pending_limit "
    "overdrawn rev",
    "A workspace as ``GET /v1/workspaces/{ws}`` answers it.")
User = _record("User", "workspace user used reserved limit rev", "A user of a workspace.")
Grant = _record("Grant",
                "grant amount remaining priority expires_at source created_at ends_with_period "
                "replayed rev",
                "A grant (plan allowance, pack, promotion...).")
Usage = _record("Usage", "workspace period period_start period_end group_by rows total",
                "Usage history of a workspace: ``rows`` are dicts, ``total`` a dict.")
Alert = _record("Alert", "name when at state", "An alert and its state this period.")
Token = _record("Token", "id token role workspaces expires_at name created_at",
                "A token; ``token`` (the secret) only in the answer that minted it.")
Webhook = _record("Webhook", "webhook url events workspaces created_at", "A webhook.")
Event = _record("Event",
                "event workspace rev limit used reserved remaining period alert state at_ms",
                "A pushed event: ``event`` is ``balance``, ``alert``, ``depleted``, ``period_reset``.")


class Page(list):
    """One page of a paginated listing: a list of results plus ``next_cursor``
    (``None`` on the last page)."""

    def __init__(self, items, next_cursor=None, raw=None):
        super().__init__(items)
        self.next_cursor = next_cursor
        self.raw = raw if raw is not None else {}
