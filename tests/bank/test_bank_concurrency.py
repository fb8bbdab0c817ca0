"""Many visitors confirming at once: money is conserved to the unit, no intent is paid twice."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict

from bankutil import assert_sound

from bank import fx
from bank.client import BankAPIError

CURRENCIES = ("MYR", "KZT", "VND", "EUR", "IDR", "USD")


async def test_concurrent_confirmations_keep_the_invariants(platform, new_visitor, storage) -> None:
    rng = random.Random(7)
    visitors = [await new_visitor(CURRENCIES[n % len(CURRENCIES)], f"v{n}") for n in range(24)]
    merchants = [await platform.create_merchant(f"m-{c}", c) for c in CURRENCIES]
    accounts = {v: await v.me() for v in visitors}
    start = {a.id: a.balance for a in accounts.values()}

    # each visitor gets 4 intents worth ~300 USD each from random merchants: the 1000 USD welcome
    # balance covers three at most, so some confirmations must fail for insufficient funds
    plans = []
    for v in visitors:
        for _ in range(4):
            m = rng.choice(merchants)
            amount = fx.usd_equivalent(300, m.currency) + rng.randint(0, 999)
            intent = await platform.create_intent(m.id, amount, m.currency, metadata={"order_id": uuid.uuid4().hex})
            plans.append((v, intent))

    async def confirm(v, intent_id: str, key: str):
        try:
            return await v.confirm_intent(intent_id, idempotency_key=key)
        except BankAPIError as exc:
            return exc.code

    calls = []
    for v, intent in plans:
        k = str(uuid.uuid4())
        calls.append(confirm(v, intent.id, k))
        if rng.random() < 0.3:
            calls.append(confirm(v, intent.id, k))  # a retry with the same key
        if rng.random() < 0.2:
            calls.append(confirm(v, intent.id, str(uuid.uuid4())))  # a double click with a new key
    rng.shuffle(calls)
    outcomes = await asyncio.gather(*calls)

    codes = [o for o in outcomes if isinstance(o, str)]
    assert "insufficient_funds" in codes
    assert set(codes) <= {"insufficient_funds", "intent_already_succeeded"}

    paid = {i.id: i for i in await platform.list_intents(status="succeeded")}
    # each intent paid at most once, by its visitor, and every success reply agrees with the bank
    assert {o.id for o in outcomes if not isinstance(o, str)} == set(paid)
    assert len(paid) > len(plans) // 2
    spent: dict[str, int] = defaultdict(int)
    received: dict[str, int] = defaultdict(int)
    for intent in paid.values():
        spent[intent.payment.payer_account_id] += intent.payment.debit_amount
        received[intent.merchant_account_id] += intent.amount
        quote = fx.quote(accounts[next(v for v, i in plans if i.id == intent.id)].currency, intent.currency,
                         intent.amount)
        assert intent.payment.debit_amount == quote.debit
    for v, account in accounts.items():
        assert (await v.me()).balance == start[account.id] - spent[account.id] >= 0
    for m in merchants:
        assert (await platform.get_account(m.id)).balance == received[m.id]
    assert_sound(storage)  # chain, balances from entries, per-currency sums zero, intents vs payments
