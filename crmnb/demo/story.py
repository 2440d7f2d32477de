"""The planted story and its numbers: what the analysis should find in the demo data.

Two departments take inbound leads: 销售一部 (Sales 1) and 客户服务部 (customer service, the control).

* From :data:`INTERVENTION` (2025-10-01) Sales 1 has a follow-up reminder: its first response to a lead
  takes half as long, its follow-up tasks are done on time more often (:data:`ON_TIME`), and its lead
  conversion rises from about 15 % to 20 % (:data:`CONVERSION`), while the control stays near 14.5 %.
* From :data:`CARE_PROGRAM` (the same day) a customer-care call programme speeds up the repeat purchases
  of customers owned by 客户服务部 (:data:`CARE_RATE_FACTOR`), so their quarterly repeat-purchase rate
  goes from about 30 % to 35 % (:data:`REPEAT_TARGET`: buyers with two orders in the quarter; the metric
  catalogue's 90-day measure per month goes from about 46 % to 51 %).

The pipeline (for scoring, routing and the pipeline forecast):

* stage-dependent win rates: a deal that reached a later stage wins more often (:data:`STAGE_PASS`);
* reps who do better with some industries (:data:`REP_STRENGTHS`): their deals pass each stage after the
  first more often, at the expense of the rest of the department-quarter (its quota is fixed);
* close-date slippage: reps expect a deal to close in :data:`EXPECTED_CLOSE_SHARE` of the time it takes
  (``opportunities.expected_close_date``), so most deals close after the expected date;
* seasonality: won deals closed in the quarter's last month are larger, in its first month smaller
  (:data:`QUARTER_END_PUSH`, a quarter-end push);
* a campaign's spend moves new leads a few weeks later: after each trade show more leads arrive
  (:data:`SHOW_LEAD_LIFT` from :data:`SHOW_LAG_DAYS` after the show's end, for the following weeks).

Calibration: lead conversion per department and quarter is hit by choosing how many leads pass each
funnel stage in every department-quarter (:func:`crmnb.demo.sales.stage_quotas`); the repeat-purchase
rate comes from a BG/NBD-like purchase process plus a final small nudge
(:func:`crmnb.demo.orders.calibrate_repeat`). The volumes below are for scale 1.
"""

from __future__ import annotations

from crmnb.demo.clock import Q3_2025, Q4_2025, QUARTER_STARTS, ts

INTERVENTION = ts("2025-10-01")
"""The day Sales 1's follow-up reminder starts."""
CARE_PROGRAM = INTERVENTION
"""The day 客户服务部's customer-care call programme starts."""
INTERVENTION_DEPARTMENT = 0  # index into schema.DEPARTMENTS: 销售一部
CONTROL_DEPARTMENT = 1  # 客户服务部, also the department of the care programme

# volumes and calibration targets (scale = 1)
LEADS_PER_QUARTER = (400, 420, 450, 480, 650, 900, 1600, 1600, 1100)
"""Leads per department and quarter, 2024-Q1 .. 2026-Q1."""
PRE_EXISTING_CUSTOMERS = 1300
EXISTING_LEAD_SHARE = 0.06
NEVER_CONTACTED = 0.06
RESPONSE_MEDIAN_H = 24.0
RESPONSE_SIGMA = 0.95
REMINDER_RESPONSE_FACTOR = 0.5  # the reminder halves the median first-response time
CONVERSION = {"sales_before": 0.15, "sales_after": 0.20, "control": 0.145}
STAGE_PASS = (0.68, 0.77, 0.77)  # needs->proposal, proposal->negotiation, negotiation->won at 15 %
STAGE_DWELL_DAYS = (7.0, 10.0, 14.0)
OPP_AMOUNT_MEDIAN = 40_000.0
OPP_AMOUNT_SIGMA = 0.85
PURCHASE_RATE_MEAN = 0.24  # repeat orders per month, mean over customers
PURCHASE_RATE_SHAPE = 1.1
CARE_RATE_FACTOR = 1.35
REPEAT_SPEND_MEDIAN = 6_000.0  # typical repeat-order amount, CNY
REPEAT_SPEND_Q = 4.0  # shape of the customer-level spend heterogeneity (Gamma-Gamma q)
REPEAT_SIZE_ELASTICITY = 0.5  # repeat spend grows with the square root of the first deal's size
PRE_SIZE_MEDIAN = 20_000.0  # first order of pre-existing customers
REPEAT_TARGET = {Q3_2025: 0.30, Q4_2025: 0.35}
ON_TIME = {"before": 0.75, "sales_after": 0.89}
REPORTED_QUARTERS = ((Q3_2025, "2025Q3"), (Q4_2025, "2025Q4"))
"""The quarters either side of the intervention, as the answer key names them."""


def conversion_target(dept: int, quarter: int) -> float:
    """Return the planned lead conversion of a department-quarter."""
    if dept == INTERVENTION_DEPARTMENT:
        return CONVERSION["sales_after"] if QUARTER_STARTS[quarter] >= INTERVENTION else CONVERSION["sales_before"]
    return CONVERSION["control"]


REP_STRENGTHS = ((0, 0, 0), (0, 1, 1), (0, 2, 5), (1, 0, 1), (1, 1, 0), (1, 2, 9))
"""Planted rep x industry strengths: (department, the rep's place in the department, industry index)."""
REP_STRENGTH_BONUS = 0.6
"""Added to a strong pair's ranking key at each stage after needs_confirmed (keys carry Gumbel noise)."""
EXPECTED_CLOSE_SHARE = 0.75
"""A deal's expected close date: its opening plus about 75 % of its planned time to close (log-normal spread
0.25): reps are optimistic, most deals slip past the date."""
QUARTER_END_PUSH = (0.85, 1.0, 1.2)
"""Factor on a won deal's amount by the month of the quarter it closes in (1st, 2nd, 3rd)."""
SHOW_LAG_DAYS = (14, 42)
"""New leads rise from two to six weeks after each trade show ends."""
SHOW_LEAD_LIFT = 1.6
"""Factor on the arrival weight of the days in that window."""
