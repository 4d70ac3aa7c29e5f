"""Synthetic but realistic data sets for demos, docs and tests.

Real customer data can't ship with the package, so these generators simulate it from a
generative story that models can actually learn. All are deterministic for a given seed.

Churn (``make_customers``): a snapshot of a telecom/SaaS customer base on 2026-06-30;
``churned`` says whether the customer cancels in the following 90 days. Every customer has a
hidden satisfaction level: unhappy customers call support more, use the product less and give
low NPS scores. Churn risk follows a logistic model whose main drivers are a month-to-month
contract (or a fixed term that ends inside the window), a short tenure (the first months are the
riskiest), three or more support calls (which hurt far more on month-to-month contracts), repeated
late payments, paying well above the usual price of the plan (add-ons, a price rise for customers
of more than two years), a low NPS, low usage and no autopay. Part of the risk shows in no
column; the latest support ticket hints at it (cancellation questions, price and outage
complaints versus praise and how-to questions), so the free text adds a little signal. About 18%
churn.

Ratings (``make_ratings``): each user and movie has a latent taste vector (movies of one genre
share a direction) plus a bias: some users rate everything high, some movies are simply better.
A rating is global mean + biases + taste match + noise, rounded to half stars. Who rates what is
skewed: a few blockbusters collect most ratings (Zipf-like) and a few users rate a lot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "REFERENCE_DATE",
    "make_customers",
    "make_movies",
    "make_new_customers",
    "make_ratings",
]

REFERENCE_DATE = pd.Timestamp("2026-06-30")
"""Snapshot date of the customer tables; tenure is counted up to it."""

PLANS = ("basic", "standard", "premium", "enterprise")
CONTRACTS = ("month-to-month", "one-year", "two-year")
REGIONS = ("Northeast", "Mid-Atlantic", "Southeast", "Midwest", "Texas", "Mountain", "Pacific")
PAYMENT_METHODS = ("credit card", "bank transfer", "electronic check", "mailed check")

_PLAN_SHARES = (0.40, 0.33, 0.19, 0.08)
_PLAN_PRICE = np.array([29.99, 54.99, 89.99, 249.00])
# Big customers sign long contracts; small ones keep their options open.
_CONTRACT_BY_PLAN = np.array([
    [0.62, 0.24, 0.14],
    [0.55, 0.26, 0.19],
    [0.45, 0.28, 0.27],
    [0.20, 0.35, 0.45],
])
_CONTRACT_DISCOUNT = np.array([1.0, 0.95, 0.90])
_REGION_SHARES = (0.18, 0.14, 0.17, 0.16, 0.13, 0.08, 0.14)
_OUTAGE_REGION = REGIONS.index("Southeast")
# Companies pay by bank transfer; consumers mostly by card or e-check.
_PAYMENT_BY_PLAN = np.array([
    [0.38, 0.18, 0.30, 0.14],
    [0.40, 0.22, 0.26, 0.12],
    [0.42, 0.28, 0.20, 0.10],
    [0.25, 0.60, 0.05, 0.10],
])
_AUTOPAY_BY_PAYMENT = np.array([0.72, 0.78, 0.35, 0.0])

_CUSTOMER_IDS = (10_000_000, 90_000_000)
_NEW_CUSTOMER_IDS = (90_000_000, 100_000_000)

_CHURN_INTERCEPT = -4.3
_CHURN_CONTRACT = np.array([0.0, -1.3, -2.35])

# Ticket templates. "{plan}", "{amount}" and "{days}" are filled per row; at most one per template.
_TICKETS = {
    "cancel": (
        "Customer asked how to cancel the {plan} plan before the next billing cycle.",
        "Wants to close the account, says a competitor offered a better deal.",
        "Asked about the early termination fee and how to port the number out.",
        "Requested cancellation, unhappy with the service over the last months.",
        "Called to ask what happens to their data if they cancel.",
        "Mentioned switching providers and asked for a final bill.",
        "Asked when the contract ends and what the renewal price will be.",
    ),
    "price": (
        "Complained that the monthly bill went up to ${amount} without notice.",
        "Says the {plan} plan is too expensive for what they use.",
        "Disputed a charge of ${amount} on the latest invoice.",
        "Asked why the price increased after the promo ended.",
        "Unhappy about add-on fees, wants a cheaper option.",
    ),
    "outage": (
        "Service outage for the past {days} days, customer very frustrated.",
        "Reported repeated connection drops in the evening.",
        "Third call about the same outage, still no fix.",
        "Slow speeds and dropped calls since the last maintenance window.",
        "Could not log in during the outage {days} days ago, lost work.",
    ),
    "billing": (
        "Payment failed, the card on file expired.",
        "Asked for a payment extension on the overdue balance.",
        "Late fee applied, customer asked to waive it.",
        "Received a past-due notice, says the payment was sent {days} days ago.",
        "Wants to split the outstanding balance of ${amount} into two payments.",
    ),
    "howto": (
        "Asked how to export reports to CSV.",
        "Question about setting up the mobile app on a new phone.",
        "Wants to know if the {plan} plan includes API access.",
        "Asked how to add a second user to the account.",
        "Needed help configuring two-factor authentication.",
        "Asked whether the {plan} plan includes priority support.",
    ),
    "praise": (
        "Customer thanked the team, issue resolved quickly.",
        "Very happy with the new dashboard, no action needed.",
        "Called to say the installation went great.",
        "Praised the support agent, would recommend us to friends.",
        "Satisfied with the {plan} plan, asked about referral credits.",
    ),
    "account": (
        "Updated the billing address.",
        "Changed the contact email on the account.",
        "Requested a copy of last month's invoice.",
        "Asked to update the company name on invoices.",
        "Password reset requested.",
    ),
}
_FOLLOW_UPS = {
    "cancel": (
        "Offered a retention discount.",
        "Transferred to the retention team.",
        "Sent cancellation instructions.",
        "Customer declined the retention offer.",
    ),
    "price": (
        "Explained the pricing change.",
        "Offered a 10% loyalty discount.",
        "Escalated to billing.",
    ),
    "outage": (
        "Escalated to network operations.",
        "Issued a service credit.",
        "Ticket reopened.",
        "Technician visit scheduled.",
    ),
    "billing": (
        "Late fee waived once.",
        "Updated card details.",
        "Set up a payment plan.",
        "Suggested enabling autopay.",
    ),
    "howto": (
        "Sent knowledge base article.",
        "Walked through the steps, resolved.",
        "Closed as resolved.",
    ),
    "praise": ("Closed as resolved.", "Logged positive feedback."),
    "account": ("Done.", "Closed as resolved.", "Verified identity and updated."),
}

GENRES = (
    "Drama", "Comedy", "Action", "Thriller", "Romance", "Sci-Fi",
    "Horror", "Animation", "Documentary", "Crime", "Fantasy", "Adventure",
)
_GENRE_SHARES = (0.20, 0.16, 0.11, 0.10, 0.08, 0.07, 0.06, 0.05, 0.05, 0.05, 0.04, 0.03)
# Crowd-pleasing genres average a little higher than horror.
_GENRE_BIAS = (0.10, -0.05, -0.05, 0.0, -0.05, 0.0, -0.25, 0.10, 0.20, 0.05, 0.0, 0.0)
_ADJECTIVES = (
    "Silent", "Crimson", "Last", "Hidden", "Broken", "Golden", "Electric", "Forgotten",
    "Wild", "Lonely", "Burning", "Frozen", "Secret", "Distant", "Savage", "Gentle",
    "Restless", "Shattered", "Velvet", "Iron", "Scarlet", "Endless", "Wandering", "Quiet",
    "Dark", "Bright", "Little", "Final", "Lost", "Crooked", "Sudden", "Perfect",
    "Brave", "Dangerous", "Invisible", "Northern", "Eternal", "Reckless", "Silver", "Long",
)
# Disjoint across genres so that generated titles never collide between genres.
_NOUNS = {
    "Drama": ("Letter", "Inheritance", "Orchard", "Widow", "Harbor", "Winter", "Daughter",
              "Confession", "Lighthouse", "Verdict", "Homecoming", "Garden"),
    "Comedy": ("Roommates", "Wedding", "Vacation", "Neighbors", "Road Trip", "Mix-Up",
               "Reunion", "Intern", "Bachelor", "Detour", "Babysitter", "Sleepover"),
    "Action": ("Protocol", "Strike", "Convoy", "Vendetta", "Extraction", "Fury", "Payload",
               "Hunter", "Siege", "Countdown", "Mercenary", "Ambush"),
    "Thriller": ("Witness", "Stranger", "Alibi", "Cipher", "Trap", "Suspect", "Pursuit",
                 "Blackout", "Deception", "Hostage", "Motive", "Whistleblower"),
    "Romance": ("Kiss", "Summer", "Sweetheart", "Serenade", "Rendezvous", "Affair",
                "Valentine", "Promise", "Honeymoon", "Dance", "Proposal", "Crush"),
    "Sci-Fi": ("Colony", "Android", "Horizon", "Singularity", "Orbit", "Nebula", "Paradox",
               "Outpost", "Starship", "Signal", "Clone", "Transmission"),
    "Horror": ("Cellar", "Haunting", "Curse", "Ritual", "Asylum", "Doll", "Seance", "Cabin",
               "Offering", "Woods", "Visitor", "Attic"),
    "Animation": ("Dragon", "Robot", "Penguin", "Balloon", "Wizard", "Moonbeam", "Sparrow",
                  "Toybox", "Snowman", "Kitten", "Lantern", "Acorn"),
    "Documentary": ("Climbers", "Farmers", "Ocean", "River", "Machine", "Archive", "Reef",
                    "Glacier", "Factory", "Orchestra", "Market", "Desert"),
    "Crime": ("Heist", "Syndicate", "Racket", "Precinct", "Informant", "Job", "Ledger",
              "Safehouse", "Counterfeit", "Mob", "Getaway", "Hustle"),
    "Fantasy": ("Sorcerer", "Crown", "Kingdom", "Sword", "Oracle", "Realm", "Enchantress",
                "Throne", "Relic", "Grimoire", "Prophecy", "Chalice"),
    "Adventure": ("Expedition", "Voyage", "Jungle", "Treasure", "Map", "Island", "Summit",
                  "Canyon", "Compass", "Caravan", "Lagoon", "Quest"),
}
_PLACES = ("Tomorrow", "Silence", "Midnight", "Ashes", "the North", "Brooklyn", "Venice",
           "Rain", "Dreams", "Shadows", "the Sea", "Autumn")


def make_customers(n: int = 5000, *, seed: int = 42, include_target: bool = True) -> pd.DataFrame:
    """A churn table of ``n`` customers as of :data:`REFERENCE_DATE`.

    Columns: customer_id, signup_date, tenure_months, plan, contract, region, payment_method,
    monthly_charges, total_charges, support_calls_90d, avg_session_minutes, autopay,
    late_payments_12m, last_nps, support_notes and, with ``include_target``, churned (cancels
    within 90 days). ``include_target=False`` gives the same rows without the label.
    """
    df = _customers(n, seed, _CUSTOMER_IDS)
    return df if include_target else df.drop(columns="churned")


def make_new_customers(n: int = 20, *, seed: int = 7) -> pd.DataFrame:
    """Customers to score: the columns of :func:`make_customers` without ``churned``.

    Their ids come from a range that :func:`make_customers` never uses.
    """
    return _customers(n, seed, _NEW_CUSTOMER_IDS).drop(columns="churned")


def make_movies(n_items: int = 800, seed: int = 42) -> pd.DataFrame:
    """The catalog of :func:`make_ratings`: movie_id, title (with year) and genre.

    Matches the ratings made with the same ``n_items`` and ``seed``.
    """
    movies = _movie_catalog(n_items, seed)
    return movies[["movie_id", "title", "genre"]]


def make_ratings(
    n_users: int = 500, n_items: int = 800, *, seed: int = 42, density: float = 0.04
) -> pd.DataFrame:
    """Explicit movie ratings: user_id, movie_id, rating (0.5 to 5.0 in half stars), rated_at.

    About ``density * n_users * n_items`` ratings, at most one per user and movie; every user
    has a few. Movie ids match :func:`make_movies` with the same ``n_items`` and ``seed``.
    """
    if n_users < 1 or n_items < 1:
        raise ValueError("n_users and n_items must be at least 1")
    # Weighted sampling without replacement gets slow as the matrix fills up.
    if not 0 < density <= 0.25:
        raise ValueError(f"density must be in (0, 0.25], got {density}")
    movies = _movie_catalog(n_items, seed)
    genre = movies["genre_code"].to_numpy()
    year = movies["year"].to_numpy()
    rng = np.random.default_rng([seed, 2])

    k = 5
    centroids = rng.normal(0.0, 0.45, (len(GENRES), k))
    item_f = centroids[genre] + rng.normal(0.0, 0.25, (n_items, k))
    user_f = rng.normal(0.0, 0.65, (n_users, k))
    user_b = rng.normal(0.0, 0.45, n_users)
    item_b = rng.normal(0.0, 0.45, n_items) + np.asarray(_GENRE_BIAS)[genre]

    # Zipf-like popularity; better and more recent movies tend to be the blockbusters.
    buzz = item_b + 0.015 * (year - 2000) + rng.normal(0.0, 0.8, n_items)
    rank = np.empty(n_items)
    rank[np.argsort(-buzz)] = np.arange(1, n_items + 1)
    item_w = rank**-0.9
    user_w = rng.lognormal(0.0, 0.9, n_users)

    users, items = _sample_pairs(rng, user_w, item_w, round(density * n_users * n_items))
    m = len(users)
    raw = (3.45 + user_b[users] + item_b[items]
           + np.einsum("ij,ij->i", user_f[users], item_f[items]) + rng.normal(0.0, 0.55, m))
    # Some users only ever give whole stars, as on older rating sites.
    whole = rng.random(n_users) < 0.3
    rating = np.where(whole[users], np.round(raw), np.round(raw * 2) / 2)
    rating = np.clip(rating, np.where(whole[users], 1.0, 0.5), 5.0)

    end = REFERENCE_DATE.value // 10**9
    start = pd.Timestamp("2019-01-01").value // 10**9
    first = rng.uniform(start, end - 30 * 86400, n_users)
    active = np.exp(rng.normal(4.5, 1.2, n_users)) * 86400
    released = (year - 1970).astype("datetime64[Y]").astype("datetime64[s]").astype(np.int64)
    lo = np.maximum(first[users], released[items])
    hi = np.maximum(np.minimum(first[users] + active[users], end), lo + 86400)
    rated = np.minimum(lo + rng.random(m) * (hi - lo), end).astype(np.int64)

    out = pd.DataFrame({
        "user_id": users.astype(np.int64) + 1,
        "movie_id": items.astype(np.int64) + 1,
        "rating": rating.astype(np.float64),
        "rated_at": rated.astype("datetime64[s]").astype("datetime64[ns]"),
    })
    return out.sort_values(["user_id", "rated_at", "movie_id"], ignore_index=True)


def _customers(n: int, seed: int, id_range: tuple[int, int]) -> pd.DataFrame:
    lo_id, hi_id = id_range
    if not 0 <= n <= hi_id - lo_id:
        raise ValueError(f"n must be between 0 and {hi_id - lo_id}, got {n}")
    # One generator draws every column in a fixed order, so a seed always gives the same rows.
    rng = np.random.default_rng(seed)
    ids = lo_id + rng.choice(hi_id - lo_id, size=n, replace=False)
    signup, tenure = _signups(rng, n)
    plan, contract, region, payment, autopay = _accounts(rng, n)
    satisfaction = rng.normal(size=n)
    stress = rng.normal(size=n)
    outage = region == _OUTAGE_REGION
    m2m = contract == 0
    price_ratio, monthly, total = _charges(rng, plan, contract, tenure)
    calls, minutes, late, nps = _usage(rng, satisfaction=satisfaction, stress=stress,
                                       outage=outage, plan=plan, tenure=tenure,
                                       autopay=autopay, payment=payment)
    observed = _churn_score(contract=contract, m2m=m2m, tenure=tenure, calls=calls, late=late,
                            price_ratio=price_ratio, nps=nps, autopay=autopay, payment=payment,
                            minutes=minutes, outage=outage)
    # What the columns can't see: the ticket text is the only trace of it.
    hidden = 0.9 * rng.normal(size=n) - 0.25 * satisfaction
    churned = rng.random(n) < 1.0 / (1.0 + np.exp(-(observed + hidden)))

    notes = _support_notes(
        rng, hidden_risk=hidden, satisfaction=satisfaction, m2m=m2m, price_ratio=price_ratio,
        outage=outage, calls=calls, late=late, minutes=minutes, plan=plan, monthly=monthly)

    monthly = np.where(rng.random(n) < 0.02, np.nan, monthly)
    total = np.where(tenure == 0, np.nan, total)
    nps_col = pd.array(nps.astype(np.int64), dtype="Int64")
    nps_col[rng.random(n) < 0.10] = pd.NA

    return pd.DataFrame({
        "customer_id": ids.astype(np.int64),
        "signup_date": signup.astype("datetime64[ns]"),
        "tenure_months": tenure,
        "plan": np.asarray(PLANS, dtype=object)[plan],
        "contract": np.asarray(CONTRACTS, dtype=object)[contract],
        "region": np.asarray(REGIONS, dtype=object)[region],
        "payment_method": np.asarray(PAYMENT_METHODS, dtype=object)[payment],
        "monthly_charges": monthly,
        "total_charges": total,
        "support_calls_90d": calls.astype(np.int64),
        "avg_session_minutes": minutes,
        "autopay": autopay,
        "late_payments_12m": late.astype(np.int64),
        "last_nps": nps_col,
        "support_notes": notes,
        "churned": churned,
    })


def _signups(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Signup dates and whole months of tenure at REFERENCE_DATE."""
    # The base grew over time: half of signups uniform over 4 years, half skewed recent
    # (1 - sqrt(U) has density 2(1 - x), most of it close to the snapshot).
    uniform, skewed = rng.random(n), 1.0 - np.sqrt(rng.random(n))
    frac = np.where(rng.random(n) < 0.5, uniform, skewed)
    days_ago = np.floor(frac * (4 * 365 + 1)).astype(np.int64)
    ref_day = REFERENCE_DATE.to_datetime64().astype("datetime64[D]")
    signup = ref_day - days_ago
    # REFERENCE_DATE is a month end, so whole calendar months are just the month difference.
    tenure = (ref_day.astype("datetime64[M]") - signup.astype("datetime64[M]")).astype(np.int64)
    return signup, tenure


def _accounts(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """Codes of plan, contract, region and payment method, and autopay."""
    plan = rng.choice(len(PLANS), size=n, p=_PLAN_SHARES)
    contract = _choose_rows(rng, _CONTRACT_BY_PLAN[plan])
    region = rng.choice(len(REGIONS), size=n, p=_REGION_SHARES)
    payment = _choose_rows(rng, _PAYMENT_BY_PLAN[plan])
    autopay = rng.random(n) < _AUTOPAY_BY_PAYMENT[payment]
    return plan, contract, region, payment, autopay


def _charges(rng: np.random.Generator, plan: np.ndarray, contract: np.ndarray,
             tenure: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Price against the plan's list price, monthly and total charges."""
    n = len(plan)
    base_price = _PLAN_PRICE[plan]
    addons = rng.poisson(0.7, n)
    # Customers older than two years were hit by a price rise that new contracts don't carry.
    legacy = (tenure > 24) & (rng.random(n) < 0.5)
    price_ratio = (np.exp(rng.normal(0.0, 0.06, n)) * (1.0 + 0.12 * addons)
                   * _CONTRACT_DISCOUNT[contract] * np.where(legacy, 1.15, 1.0))
    monthly = np.round(base_price * price_ratio, 2)
    total = np.round(tenure * monthly * np.exp(rng.normal(0.0, 0.05, n)), 2)
    return price_ratio, monthly, total


def _usage(rng: np.random.Generator, *, satisfaction: np.ndarray, stress: np.ndarray,
           outage: np.ndarray, plan: np.ndarray, tenure: np.ndarray, autopay: np.ndarray,
           payment: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Support calls, session minutes, late payments and last NPS score."""
    n = len(plan)
    calls_rate = np.exp(-0.3 - 0.55 * satisfaction + 0.7 * outage + 0.35 * (plan == 3)
                        + 0.5 * (tenure < 3))
    calls = rng.poisson(calls_rate)
    plan_usage = np.array([-0.15, 0.0, 0.15, 0.3])[plan]
    minutes = np.round(np.exp(rng.normal(2.9 + 0.3 * satisfaction + plan_usage, 0.55)), 1)
    # Nobody can be late more often than they were billed.
    late_rate = (np.exp(-1.4 + 0.6 * stress + 1.1 * ~autopay + 0.4 * (payment == 3))
                 * np.minimum(tenure, 12) / 12)
    late = rng.poisson(late_rate * rng.gamma(2.0, 0.5, n))
    nps = np.clip(np.round(7.0 + 1.7 * satisfaction + rng.normal(0.0, 1.3, n)), 0, 10)
    return calls, minutes, late, nps


def _churn_score(*, contract: np.ndarray, m2m: np.ndarray, tenure: np.ndarray,
                 calls: np.ndarray, late: np.ndarray, price_ratio: np.ndarray, nps: np.ndarray,
                 autopay: np.ndarray, payment: np.ndarray, minutes: np.ndarray,
                 outage: np.ndarray) -> np.ndarray:
    """The log-odds of churning that the columns explain."""
    # Fixed-term customers can leave penalty-free only when their term ends inside the window.
    term = np.array([1, 12, 24])[contract]
    renewal_due = ~m2m & (term - tenure % term <= 3)
    return (
        _CHURN_INTERCEPT
        + _CHURN_CONTRACT[contract]
        + 1.3 * np.exp(-tenure / 4.0) * np.where(m2m, 1.0, 0.5)
        + 2.6 * (m2m & (tenure <= 3))
        - 0.5 * (tenure >= 36)
        + 2.6 * renewal_due
        + np.where(m2m, 0.7 * np.minimum(calls, 6) + 1.95 * (calls >= 3),
                   0.2 * np.minimum(calls, 6))
        + 0.75 * (late >= 2) + 0.55 * (late >= 4)
        + 15.6 * np.maximum(price_ratio - 1.15, 0.0)
        + np.where(nps <= 6, 0.6, np.where(nps >= 9, -0.45, 0.0)) + 0.35 * (nps <= 3)
        + 0.4 * ~autopay
        + 0.4 * (payment == 2)
        + 2.6 * (minutes < 6)
        + 0.4 * outage
    )


def _choose_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category per row, each row with its own probabilities."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    return np.minimum((u >= cum).sum(axis=1), probs.shape[1] - 1)


def _support_notes(
    rng: np.random.Generator,
    *,
    hidden_risk: np.ndarray,
    satisfaction: np.ndarray,
    m2m: np.ndarray,
    price_ratio: np.ndarray,
    outage: np.ndarray,
    calls: np.ndarray,
    late: np.ndarray,
    minutes: np.ndarray,
    plan: np.ndarray,
    monthly: np.ndarray,
) -> np.ndarray:
    """The latest ticket per customer: None (no ticket), "" (blank) or templated text."""
    n = len(plan)
    # Columns follow the order of _TICKETS. The hidden risk leaks in here and nowhere else.
    scores = np.column_stack([
        -2.6 + 2.0 * hidden_risk + 0.5 * m2m,                                # cancel
        -1.3 + 4.0 * np.maximum(price_ratio - 1.1, 0.0) + 0.8 * hidden_risk, # price
        -1.6 + 1.6 * outage + 0.25 * np.minimum(calls, 6) + 0.5 * hidden_risk,
        -1.4 + 0.35 * np.minimum(late, 6) + 0.3 * hidden_risk,               # billing
        0.2 + 0.3 * (np.log(minutes + 1.0) - 3.0) - 0.5 * hidden_risk,       # howto
        -0.7 + 0.4 * satisfaction - 1.2 * hidden_risk,                       # praise
        np.zeros(n),                                                         # account
    ])
    kind = np.argmax(scores + rng.gumbel(size=scores.shape), axis=1)
    text = _decorated(rng, kind, _ticket_text(rng, kind, plan, monthly))

    # No ticket at all is likelier for customers who never call.
    u = rng.random(n)
    no_ticket = u < np.where(calls == 0, 0.22, 0.10)
    text = text.astype(object)
    text[(u >= 0.96) & ~no_ticket] = ""
    text[no_ticket] = None
    return text


def _ticket_text(rng: np.random.Generator, kind: np.ndarray, plan: np.ndarray,
                 monthly: np.ndarray) -> np.ndarray:
    """A template of each row's ticket kind, its slot filled with the plan, amount or days."""
    n, kinds = len(kind), list(_TICKETS)
    templates = [t for k in kinds for t in _TICKETS[k]]
    chosen = _pick_within(rng, kind, [len(_TICKETS[k]) for k in kinds])
    # Split each template around its one slot so rows can be filled with array concatenation.
    slots = ("{plan}", "{amount}", "{days}")
    parts = []
    for text in templates:
        hit = next((i for i, s in enumerate(slots) if s in text), -1)
        before, _, after = text.partition(slots[hit]) if hit >= 0 else (text, "", "")
        parts.append((before, after, hit))
    before = np.asarray([p[0] for p in parts], dtype=object)[chosen]
    after = np.asarray([p[1] for p in parts], dtype=object)[chosen]
    slot = np.asarray([p[2] for p in parts])[chosen]
    fill = np.full(n, "", dtype=object)
    fill[slot == 0] = np.asarray(PLANS, dtype=object)[plan[slot == 0]]
    fill[slot == 1] = np.char.mod("%.2f", monthly[slot == 1]).astype(object)
    fill[slot == 2] = (2 + rng.poisson(2.0, (slot == 2).sum())).astype(str).astype(object)
    return before + fill + after


def _decorated(rng: np.random.Generator, kind: np.ndarray, text: np.ndarray) -> np.ndarray:
    """The ticket as the ticketing system exports it: a follow-up, a channel, some markup."""
    n, kinds = len(kind), list(_TICKETS)
    follow_ups = np.asarray([t for k in kinds for t in _FOLLOW_UPS[k]], dtype=object)
    follow = follow_ups[_pick_within(rng, kind, [len(_FOLLOW_UPS[k]) for k in kinds])]
    has_follow = rng.random(n) < 0.7
    # Pasted from the ticketing system: line breaks come through as <br> tags.
    joiner = np.asarray([" ", "<br>", "<br><br>"], dtype=object)[
        rng.choice(3, size=n, p=[0.75, 0.18, 0.07])]
    text = np.where(has_follow, text + joiner + follow, text)
    channel = np.asarray(["", "Phone: ", "Chat: ", "Email: "], dtype=object)[
        rng.choice(4, size=n, p=[0.55, 0.2, 0.15, 0.1])]
    text = channel + text
    angry = np.isin(kind, [kinds.index("cancel"), kinds.index("price"), kinds.index("outage")])
    text = np.where(rng.random(n) < np.where(angry, 0.12, 0.01), "<b>URGENT:</b> " + text, text)
    return np.where(rng.random(n) < 0.06, "<p>" + text + "</p>", text)


def _pick_within(rng: np.random.Generator, group: np.ndarray, sizes: list[int]) -> np.ndarray:
    """A uniform index into a flat list made of consecutive groups, within each row's group."""
    sizes_a = np.asarray(sizes)
    offsets = np.concatenate([[0], np.cumsum(sizes_a)[:-1]])
    return offsets[group] + np.floor(rng.random(len(group)) * sizes_a[group]).astype(np.int64)


def _movie_catalog(n_items: int, seed: int) -> pd.DataFrame:
    if n_items < 1:
        raise ValueError("n_items must be at least 1")
    rng = np.random.default_rng([seed, 1])
    genre = rng.choice(len(GENRES), size=n_items, p=_GENRE_SHARES)
    year = np.clip(2026 - np.floor(rng.exponential(14.0, n_items)), 1950, 2026).astype(np.int64)
    titles = np.empty(n_items, dtype=object)
    for g, name in enumerate(GENRES):
        rows = np.flatnonzero(genre == g)
        if not len(rows):
            continue
        nouns = _NOUNS[name]
        grid = ([f"The {a} {w}" for a in _ADJECTIVES for w in nouns]
                + [f"{a} {w}" for a in _ADJECTIVES for w in nouns]
                + [f"The {w} of {p}" for w in nouns for p in _PLACES])
        pick = rng.choice(len(grid), size=len(rows), replace=len(rows) > len(grid))
        titles[rows] = np.asarray(grid, dtype=object)[pick]
    titles = titles + " (" + year.astype(str).astype(object) + ")"
    return pd.DataFrame({
        "movie_id": np.arange(1, n_items + 1, dtype=np.int64),
        "title": titles,
        "genre": np.asarray(GENRES, dtype=object)[genre],
        "genre_code": genre,
        "year": year,
    })


def _sample_pairs(rng, user_w, item_w, m):
    """``m`` distinct (user, item) pairs drawn in proportion to user activity x item popularity."""
    n_users, n_items = len(user_w), len(item_w)
    m = max(1, min(m, n_users * n_items))
    item_p = item_w / item_w.sum()
    user_p = user_w / user_w.sum()
    # Every user gets a few ratings first, so that nobody is missing from the matrix.
    seed_users = np.repeat(np.arange(n_users), 3)
    users = [seed_users]
    items = [rng.choice(n_items, size=len(seed_users), p=item_p)]
    have = 0
    for _ in range(60):
        codes = np.concatenate(users) * n_items + np.concatenate(items)
        _, first = np.unique(codes, return_index=True)
        have = len(first)
        if have >= m:
            break
        size = 2 * (m - have) + 1000
        users.append(rng.choice(n_users, size=size, p=user_p))
        items.append(rng.choice(n_items, size=size, p=item_p))
    keep = np.sort(first)[:m]
    return codes[keep] // n_items, codes[keep] % n_items
