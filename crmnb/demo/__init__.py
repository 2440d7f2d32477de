"""The demo CRM data: deterministic exports of a Chinese B2B services company, 2024-01 to 2026-03.

:func:`generate` writes one file per table of :data:`crmnb.intake.schema.DEFAULT_FILES` (all CSV,
``campaigns.xlsx`` with sheet ``campaigns``) plus ``planted.json``, the answer key of the planted
effects and data-quality faults (tests only; the analysis never reads it). Same seed and scale give
byte-identical files; :func:`to_sqlite` loads them into a SQLite database.

The company: inbound leads for two departments, 销售一部 (Sales 1) and 客户服务部 (customer service,
the control), worked by 5-8 reps each; leads become opportunities, won deals become customers who
order again until they churn, open tickets and visit the web shop, app or stores. Export date
2026-03-31: nothing is dated later, and deals, leads and tasks still in progress then are open.

What is planted (:mod:`crmnb.demo.story`, :mod:`crmnb.demo.faults`):

* from 2025-10-01 Sales 1 has a follow-up reminder that halves its lead response time, makes its
  tasks punctual and lifts its lead conversion from about 15 % to 20 %, while the control stays put;
* from the same date a customer-care call programme raises the repeat-purchase rate of customers
  owned by 客户服务部 from about 30 % to 35 % per quarter (buyers with two orders in the quarter; on the
  metric catalogue's 90-day measure per month, from about 46 % to 51 %);
* 2-3 campaigns spend well over their cost-per-acquisition benchmark; unhappy customers complain
  more and churn earlier, and their visits fade out before they go;
* the faults real exports have: duplicate customers typed in slightly differently, missing phones
  and e-mails, notes that trip spreadsheets and HTML, won deals without a receipt and receipts that
  differ from the deal, mixed date formats in ``activities.csv``, a BOM on ``customers.csv``, one
  customer with a pile of follow-ups.

File format: UTF-8, comma separated, quotes only where needed, empty cells for missing values;
datetimes ``YYYY-MM-DD HH:MM:SS`` except the planted mix in ``activities.csv`` (minute resolution
there); amounts with two decimals; csat/nps as integers; campaign dates ``YYYY-MM-DD`` text cells.

How it is built: :func:`crmnb.demo.world.build` draws every entity from one random generator in a
fixed order (one module per concern: leads, sales, marketing, customers, orders, service,
activities, receipts); :mod:`crmnb.demo.tables` lays each table out; :mod:`crmnb.demo.write` writes
the files with headers from the schema; :mod:`crmnb.demo.answers` writes the answer key.
"""

from crmnb.demo.generator import DEFAULT_SEED, generate, to_sqlite

__all__ = ["DEFAULT_SEED", "generate", "to_sqlite"]
