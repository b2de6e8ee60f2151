"""Every Redis key template, in one place.

All keys of an event share the hash tag ``{ev:<event_id>}`` so that each Lua script
touches a single slot and the engine runs unchanged on Redis Cluster.
"""

from __future__ import annotations

import functools

#: Set of event ids whose inventory is armed (the sweeper walks it). Global, not per event.
ARMED_EVENTS = "onsale:armed"
#: Sorted set: ids retired from ``ARMED_EVENTS`` (ended, nothing live, all committed), scored
#: by when (epoch ms); bounded (onsale/events/retirement.py). Its hash tag is the whole name
#: of ``ARMED_EVENTS``, so both share one Redis Cluster slot and one script moves an id.
RETIRED_EVENTS = "{onsale:armed}:retired"
#: Counter bumped whenever retirement takes ids out of ``ARMED_EVENTS`` or puts them back:
#: with the set's size (which arming changes) it tells a committer to read the set again.
ARMED_GENERATION = "{onsale:armed}:gen"
#: String with an expiry: the gateway that looks for events to retire this round.
RETIRE_LOCK = "{onsale:armed}:retiring"


_TAG = "{ev:"


def tag(event_id: str) -> str:
    return _TAG + event_id + "}"


def event_of(key: str) -> str:
    """The event id of one of an event's keys: ``{ev:<id>}:orders`` -> ``<id>``."""
    return key[len(_TAG) : key.index("}")]


def inventory(event_id: str) -> str:
    """Hash: ``<tier>:cap|held|sold|limit|price`` per tier, plus ``hold_ms``, ``tiers`` and,
    once the event is cancelled, ``cancelled`` (epoch ms; lua/cancel.lua)."""
    return tag(event_id) + ":inv"


def holds_expiry(event_id: str) -> str:
    """Sorted set: live hold id scored by its expiry in epoch milliseconds."""
    return tag(event_id) + ":holds:exp"


def holds_data(event_id: str) -> str:
    """Hash: live hold id -> ``expires_ms|owner|tier qty tier qty ...``."""
    return tag(event_id) + ":holds:data"


def holds_done(event_id: str) -> str:
    """Hash: finished hold id -> ``released`` | ``expired`` | ``confirmed:<order_id>``."""
    return tag(event_id) + ":holds:done"


def orders_stream(event_id: str) -> str:
    """Stream of confirmed orders, consumed by the write-behind committer."""
    return tag(event_id) + ":orders"


def owners(event_id: str) -> str:
    """Hash: owner (an admission) -> tickets it holds or bought, for its purchase limit."""
    return tag(event_id) + ":owners"


@functools.lru_cache(maxsize=4096)
def inventory_keys(event_id: str) -> tuple[str, ...]:
    """The keys every inventory script takes, in the order ``lua/_common.lua`` names them
    (remembered: every hold asks)."""
    return (
        inventory(event_id),
        holds_expiry(event_id),
        holds_data(event_id),
        holds_done(event_id),
        orders_stream(event_id),
        owners(event_id),
        queue_active(event_id),
        orders(event_id),
        order_counts(event_id),
        promo(event_id),
        holds_promo(event_id),
    )


def promo(event_id: str) -> str:
    """Hash: ``<CODE>`` -> ``<kind p|a>|<value>|<max_uses, 0 = none>|<from_ms>|<until_ms>|<tier
    ids, space-separated; empty = all>`` and ``<CODE>:used`` -> uses (live holds with the code
    plus confirmed orders with it); codes upper case (onsale/promo/codes.py)."""
    return tag(event_id) + ":promo"


def holds_promo(event_id: str) -> str:
    """Hash: live hold id -> ``<CODE>|<discount>``: the code a hold took a use of, and the
    discount fixed then (minor units)."""
    return tag(event_id) + ":holds:promo"


def onsale(event_id: str) -> str:
    """Hash: the on-sale schedule the waiting room reads at every decision.

    ``opens_ms``, ``closes_ms`` (0 = none; 1 = a cancelled event, closed since ever),
    ``admit_per_minute``, ``max_active`` (0 = no cap), ``hold_seconds``, ``paused`` (0/1).
    """
    return tag(event_id) + ":onsale"


@functools.lru_cache(maxsize=4096)
def queue_keys(event_id: str) -> tuple[str, ...]:
    """The keys every waiting-room script takes, in the order ``lua/_queue.lua`` names them:
    the schedule and the inventory (what is left to sell), then the room itself (``q:``);
    remembered: every join asks."""
    return (
        onsale(event_id),
        inventory(event_id),
        queue_state(event_id),
        queue_pre(event_id),
        queue_visitors(event_id),
        queue_by_seq(event_id),
        queue_seen(event_id),
        queue_active(event_id),
        queue_admissions(event_id),
        queue_rate(event_id),
        queue_places(event_id),
        queue_forget(event_id),
        queue_presale(event_id),
        access_codes(event_id),
        access_visitors(event_id),
        queue_line(event_id),
        queue_alive(event_id),
    )


def queue_state(event_id: str) -> str:
    """Hash: seed, seed_hash, frozen, pre_count, seq, cursor, credit, last_ms and the
    counters admitted, skipped, noshow, claimed."""
    return tag(event_id) + ":q:state"


def queue_pre(event_id: str) -> str:
    """Sorted set: pre-queue visitors scored by a keyed hash (the fair-start shuffle)."""
    return tag(event_id) + ":q:pre"


def queue_presale(event_id: str) -> str:
    """Sorted set: the presale's pre-queue (access code holders before ``presale_ms``), scored
    like ``q:pre`` but by the presale's own seed."""
    return tag(event_id) + ":q:ppre"


def access_codes(event_id: str) -> str:
    """Hash: ``<sha256 of a code>:max|uses|tiers`` per access code (onsale/queue/access.py);
    ``tiers`` is space-separated tier ids, empty for every tier."""
    return tag(event_id) + ":ac"


def access_visitors(event_id: str) -> str:
    """Hash: visitor -> the sha256 of the access code they used first (bound to them)."""
    return tag(event_id) + ":ac:vis"


def queue_visitors(event_id: str) -> str:
    """Hash: visitor -> sequence number (0 while in the pre-queue, ``p`` while in the
    presale's)."""
    return tag(event_id) + ":q:vis"


def queue_by_seq(event_id: str) -> str:
    """Hash: sequence number -> visitor, for those who joined after opening, as rooms of an
    earlier version kept it (now ``q:line``): still read, and emptied, by the cursor."""
    return tag(event_id) + ":q:byseq"


def queue_line(event_id: str) -> str:
    """List: the visitors ahead of the cursor who took a numbered place (not a pre-queue's
    rank), in sequence order; the cursor pops its head. (Was the hash ``q:byseq``.)"""
    return tag(event_id) + ":q:line"


def queue_alive(event_id: str) -> str:
    """String (BITFIELD): per sequence number ``s``, two i64 at ``#2s`` and ``#2s+1``: the
    visitor's alive-until and earliest next poll (ms). 16 bytes a place, no per-visitor key;
    dropped once the cursor has passed every number."""
    return tag(event_id) + ":q:alive"


def queue_seen(event_id: str) -> str:
    """Hash: pre-queue visitor -> alive-until (ms), and ``<visitor>:n`` -> their earliest next
    poll; past alive-until the visitor has abandoned. (Numbered places: ``q:alive``.)"""
    return tag(event_id) + ":q:seen"


def queue_active(event_id: str) -> str:
    """Sorted set: admitted visitors scored by their admission's expiry (ms)."""
    return tag(event_id) + ":q:active"


def queue_admissions(event_id: str) -> str:
    """Hash: visitor -> ``admitted_ms|expires_ms|claimed``."""
    return tag(event_id) + ":q:adm"


def queue_rate(event_id: str) -> str:
    """Hash: 10-second bucket -> admissions in it (the measured rate)."""
    return tag(event_id) + ":q:rate"


def queue_places(event_id: str) -> str:
    """Hash: client network -> its visitors with a place (space-separated), for the cap on
    live places per client (ended ones are dropped as they are found)."""
    return tag(event_id) + ":q:places"


def queue_forget(event_id: str) -> str:
    """Sorted set: visitor -> when their state may be dropped (ms), so that ended places,
    lapsed "left" answers and the pre-queue's abandoned visitors leave nothing."""
    return tag(event_id) + ":q:forget"


def orders(event_id: str) -> str:
    """Hash: order id -> the order's JSON (``checkout.models.Order``), pending or final."""
    return tag(event_id) + ":orders:data"


def refund_requests(event_id: str) -> str:
    """Hash: order id -> ``<return_to_sale 0|1>|<reason>`` of the refund first asked for it
    (onsale/checkout/refunds.py): a resumed refund does what was first asked."""
    return tag(event_id) + ":orders:refunds"


def refund_lock(event_id: str, order_id: str) -> str:
    """String with an expiry: the one request carrying an order's refund through now."""
    return tag(event_id) + ":orders:refunding:" + order_id


def order_counts(event_id: str) -> str:
    """Hash: ``refunded`` -> refund entries on the orders stream (the rest are confirmed)."""
    return tag(event_id) + ":orders:count"


def idempotency(event_id: str, digest: str) -> str:
    """String: ``<fingerprint>|<order_id>`` of the checkout that used an Idempotency-Key
    (``digest``: a hash of the key); it expires a while after its hold would have."""
    return tag(event_id) + ":idem:" + digest


#: Rate-limit scope of checkouts, per client address (one scope for every event: a made-up
#: hold id must not mint counters under made-up events).
CHECKOUT_LIMIT = "onsale:checkout"
#: Rate-limit scopes of Find my tickets: per client address, and per e-mail address (counted
#: under a hash of it, never the address itself).
LOOKUP_LIMIT = "onsale:lookup"
LOOKUP_ADDRESS_LIMIT = "onsale:lookup:email"


def stripe_event(stripe_event_id: str) -> str:
    """String with an expiry: a Stripe event (``evt_...``) handled already; redeliveries of
    it are answered without being handled again."""
    return "onsale:stripe:event:" + stripe_event_id


def event_limit(event_id: str, action: str) -> str:
    """Rate-limit scope of one action on an event (``join``, ``checkin``, ...), per client."""
    return tag(event_id) + ":" + action


def rate_limit(scope: str, address: str, window: int) -> str:
    """String with an expiry: requests of ``scope`` from ``address`` in one one-minute
    ``window`` (minutes since the epoch)."""
    return scope + ":rl:" + address + ":" + str(window)


#: The committer's consumer group on every event's orders stream.
COMMITTERS = "committers"


def commit_state(event_id: str) -> str:
    """Hash: ``last_id``, ``last_ms``, ``committed``, ``dead``, ``batch`` of the committers."""
    return tag(event_id) + ":commit"


def dead_letters(event_id: str) -> str:
    """Stream: entries the committer could not write, with ``source_id`` and ``reason``."""
    return orders_stream(event_id) + ":dead"


def recovery(event_id: str) -> str:
    """String with an expiry: held by the one ``onsale recover`` rebuilding the event."""
    return tag(event_id) + ":recover"


def session(digest: str) -> str:
    """Hash with an expiry: ``user``, ``csrf`` of a console session (``digest``: sha256 of
    the cookie's session id; onsale/accounts/sessions.py)."""
    return "onsale:session:" + digest


def login_failures(kind: str, who: str) -> str:
    """String with an expiry: failed logins of an ``account`` (a hash of its e-mail) or from a
    ``client`` address in the current throttle window."""
    return "onsale:login:" + kind + ":" + who


def pow_spent(event_id: str, minute: int) -> str:
    """Set with an expiry: the salts of the proof-of-work challenges (onsale/botgate) spent on
    a join, bucketed by the minute (epoch minutes) their challenges expire in. A challenge
    cannot be spent after it expires, so each bucket goes a minute after its last one."""
    return tag(event_id) + ":pow:spent:" + str(minute)


def pow_joins(event_id: str, second: int) -> str:
    """String with an expiry: joins that spent a proof-of-work in this epoch second; the
    last few seconds' give the join rate that raises the difficulty (onsale/botgate)."""
    return tag(event_id) + ":pow:joins:" + str(second)
