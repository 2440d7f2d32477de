"""Deterministic demo CRM exports: a Chinese B2B services company, 2024-01 to 2026-03.

:func:`generate` writes one file per table of :data:`crmnb.intake.schema.DEFAULT_FILES`
(all CSV, ``campaigns.xlsx`` with sheet ``campaigns``) plus ``planted.json``, the
answer key of the planted effects and data-quality faults (tests only; the
analysis never reads it). Same seed and scale give byte-identical files.

The story: inbound leads for two departments (销售一部 = Sales 1, 客户服务部 =
customer service, the control); from 2025-10-01 Sales 1 has a follow-up reminder
that halves its lead response time and lifts its lead conversion from about 15 %
to 20 %; from the same date a customer-care call programme raises the repeat-
purchase rate of customers owned by 客户服务部 from about 30 % to 35 % per
quarter. Export date 2026-03-31: nothing is dated later, and deals, leads and
tasks still in progress then are open.

Accounts and prospects: every opportunity needs a ``customer_id``, so the
customers table holds *accounts*. An account is one of

* a pre-existing customer (``created_at`` in 2021-2023, orders from then on),
* a customer created by a won deal (``created_at`` = the won date), or
* a prospect: the account opened with the opportunity of a lead that has not
  converted (lost or still open; ``created_at`` = the opportunity's
  ``created_at``). Prospects never have orders, receipts, tickets or visits.

Buying customers are thus the accounts with at least one order.
``leads.customer_id`` is only set for converted leads; leads of existing
customers (about 6 %) reuse that customer's account and contact details.

Calibration: lead conversion per department and quarter is hit by choosing the
number of leads passing each funnel stage in every department-quarter, and
picking *which* leads pass by a response-time-weighted draw (faster first
contact, better odds). The quarterly repeat-purchase rate of 客户服务部 comes
from a BG/NBD-like purchase process; a final small nudge (adding or removing a
few repeat orders) removes sampling noise in 2025-Q3/Q4.

File format: UTF-8 (``customers.csv`` with a BOM), comma separated, quotes only
where needed, empty cells for missing values; datetimes ``YYYY-MM-DD HH:MM:SS``
except the planted mix in ``activities.csv`` (minute resolution there);
amounts with two decimals; csat/nps as integers; campaign dates ``YYYY-MM-DD``
text cells.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crmnb.intake.schema import DEFAULT_FILES, DEPARTMENTS, LOSS_REASONS, TABLES

__all__ = ["generate", "DEFAULT_SEED"]

DEFAULT_SEED = 20250701
"""The seed used when none is given."""

# ---------------------------------------------------------------------------
# time
# ---------------------------------------------------------------------------

DAY = 86_400
HOUR = 3_600
MONTH = int(30.4375 * DAY)
NAT = np.iinfo(np.int64).min
"""Missing timestamp in the int64-seconds arrays used throughout."""


def _ts(text: str) -> int:
    """Return seconds since 1970-01-01 for an ISO date(time) string."""
    return int(np.datetime64(text, "s").astype(np.int64))


HISTORY_START = _ts("2021-01-01")
START = _ts("2024-01-01")
EXPORT_END = _ts("2026-04-01") - 1  # 2026-03-31 23:59:59
INTERVENTION = _ts("2025-10-01")
CARE_PROGRAM = INTERVENTION
QUARTER_STARTS = tuple(
    _ts(s)
    for s in (
        "2024-01-01",
        "2024-04-01",
        "2024-07-01",
        "2024-10-01",
        "2025-01-01",
        "2025-04-01",
        "2025-07-01",
        "2025-10-01",
        "2026-01-01",
        "2026-04-01",
    )
)
Q3_2025, Q4_2025 = 6, 7  # indices into QUARTER_STARTS

# ---------------------------------------------------------------------------
# volumes and calibration targets (scale = 1)
# ---------------------------------------------------------------------------

LEADS_PER_QUARTER = (400, 420, 450, 480, 650, 900, 1600, 1600, 1100)
"""Leads per department and quarter, 2024-Q1 .. 2026-Q1."""
PRE_EXISTING_CUSTOMERS = 1300
EXISTING_LEAD_SHARE = 0.06
NEVER_CONTACTED = 0.06
RESPONSE_MEDIAN_H = 24.0
RESPONSE_SIGMA = 0.95
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

# ---------------------------------------------------------------------------
# vocabularies
# ---------------------------------------------------------------------------

SURNAMES = (
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("赵", "zhao"),
    ("吴", "wu"),
    ("周", "zhou"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("马", "ma"),
    ("朱", "zhu"),
    ("胡", "hu"),
    ("郭", "guo"),
    ("何", "he"),
    ("高", "gao"),
    ("林", "lin"),
    ("罗", "luo"),
    ("郑", "zheng"),
    ("梁", "liang"),
    ("谢", "xie"),
    ("宋", "song"),
    ("唐", "tang"),
    ("韩", "han"),
    ("冯", "feng"),
    ("邓", "deng"),
    ("曹", "cao"),
    ("彭", "peng"),
    ("曾", "zeng"),
    ("萧", "xiao"),
    ("田", "tian"),
    ("董", "dong"),
    ("潘", "pan"),
    ("袁", "yuan"),
    ("蔡", "cai"),
    ("蒋", "jiang"),
    ("余", "yu"),
    ("杜", "du"),
)
GIVEN_NAMES = (
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("磊", "lei"),
    ("洋", "yang"),
    ("艳", "yan"),
    ("勇", "yong"),
    ("军", "jun"),
    ("杰", "jie"),
    ("娟", "juan"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("秀英", "xiuying"),
    ("霞", "xia"),
    ("平", "ping"),
    ("刚", "gang"),
    ("丽", "li"),
    ("强", "qiang"),
    ("鹏", "peng"),
    ("浩", "hao"),
    ("婷", "ting"),
    ("晨", "chen"),
    ("宇", "yu"),
    ("欣怡", "xinyi"),
    ("子涵", "zihan"),
    ("俊杰", "junjie"),
    ("文博", "wenbo"),
    ("思远", "siyuan"),
    ("雨桐", "yutong"),
    ("建华", "jianhua"),
    ("志强", "zhiqiang"),
    ("海燕", "haiyan"),
    ("晓东", "xiaodong"),
    ("佳琪", "jiaqi"),
    ("梓萱", "zixuan"),
    ("浩然", "haoran"),
    ("嘉怡", "jiayi"),
    ("国庆", "guoqing"),
    ("红梅", "hongmei"),
    ("立新", "lixin"),
    ("春生", "chunsheng"),
    ("玉兰", "yulan"),
    ("振华", "zhenhua"),
    ("雪", "xue"),
    ("凯", "kai"),
    ("斌", "bin"),
    ("琳", "lin"),
)
CITIES = (
    "上海",
    "北京",
    "深圳",
    "杭州",
    "广州",
    "南京",
    "苏州",
    "成都",
    "武汉",
    "西安",
    "重庆",
    "天津",
    "宁波",
    "厦门",
    "长沙",
    "合肥",
    "青岛",
    "无锡",
)
CITY_WEIGHTS = (14, 12, 11, 10, 9, 6, 6, 5, 4, 3, 3, 3, 3, 2, 2, 2, 2, 3)
INDUSTRIES = (
    ("信息技术", ("科技", "信息技术", "软件", "网络科技")),
    ("制造业", ("机械", "精密制造", "电子", "新材料")),
    ("零售", ("商贸", "贸易", "百货")),
    ("医疗健康", ("医疗器械", "生物科技", "健康科技")),
    ("教育", ("教育科技", "培训")),
    ("物流", ("物流", "供应链管理", "国际货运")),
    ("金融服务", ("投资咨询", "金融信息服务")),
    ("餐饮", ("餐饮管理", "食品")),
    ("建筑地产", ("建筑工程", "物业管理")),
    ("专业服务", ("管理咨询", "人力资源", "广告")),
)
INDUSTRY_WEIGHTS = (18, 16, 10, 9, 7, 9, 6, 6, 8, 11)
BRAND_FIRST = tuple("云华博鼎星领瑞安恒盛嘉智创天泰远佳益金宏正新锦润达睿晟卓信和")
BRAND_SECOND = tuple("启信远盛河航丰捷通世禾源辰峰达科汇拓联业邦瑞誉诚驰腾图")
MOBILE_PREFIXES = (
    130,
    131,
    132,
    133,
    134,
    135,
    136,
    137,
    138,
    139,
    150,
    151,
    152,
    153,
    155,
    156,
    157,
    158,
    159,
    180,
    181,
    182,
    183,
    184,
    185,
    186,
    187,
    188,
    189,
)
EMAIL_DOMAINS = ("example.com", "example.cn")

CHANNELS = ("search", "wechat", "trade_show", "referral", "email", "content")
LEAD_CHANNEL_WEIGHTS = (0.28, 0.24, 0.30, 0.12, 0.11, 0.15)  # trade_show only near an event
PRE_CHANNEL_WEIGHTS = (0.25, 0.20, 0.15, 0.20, 0.08, 0.12)
TRADE_SHOW = CHANNELS.index("trade_show")
TRADE_SHOW_FOLLOW_UP_DAYS = 45

CAMPAIGNS = (
    # channel, name, start, end (inclusive), cpa benchmark (CNY per acquired customer)
    ("search", "2024百度搜索推广", "2024-01-01", "2024-12-31", 9000),
    ("search", "2025搜索引擎推广", "2025-01-01", "2025-12-31", 9000),
    ("search", "2026第一季度搜索推广", "2026-01-01", "2026-03-31", 9500),
    ("wechat", "2024上半年微信朋友圈广告", "2024-01-01", "2024-06-30", 7000),
    ("wechat", "2024下半年微信公众号推广", "2024-07-01", "2024-12-31", 7000),
    ("wechat", "2025上半年微信视频号推广", "2025-01-01", "2025-06-30", 7500),
    ("wechat", "2025下半年微信私域运营", "2025-07-01", "2025-12-31", 7500),
    ("wechat", "2026春季微信推广", "2026-01-01", "2026-03-31", 7500),
    ("trade_show", "2024上海国际工业博览会", "2024-04-10", "2024-04-12", 15000),
    ("trade_show", "2024深圳数字经济展", "2024-10-16", "2024-10-18", 15000),
    ("trade_show", "2025杭州企业服务峰会", "2025-05-14", "2025-05-16", 16000),
    ("trade_show", "2025北京SaaS大会", "2025-11-12", "2025-11-14", 16000),
    ("referral", "2024老客户转介绍计划", "2024-01-01", "2024-12-31", 3000),
    ("referral", "2025合作伙伴推荐计划", "2025-01-01", "2026-03-31", 3200),
    ("email", "2024邮件营销", "2024-01-01", "2024-12-31", 4000),
    ("email", "2025季度邮件营销", "2025-01-01", "2025-12-31", 4000),
    ("email", "2026第一季度邮件营销", "2026-01-01", "2026-03-31", 4000),
    ("content", "2024行业白皮书", "2024-01-01", "2024-12-31", 6000),
    ("content", "2025上半年客户案例内容营销", "2025-01-01", "2025-06-30", 6000),
    ("content", "2025下半年直播与研讨会", "2025-07-01", "2026-03-31", 6500),
)

OPP_STAGES = ("needs_confirmed", "proposal", "negotiation", "won", "lost")
OPP_STATUSES = ("open", "won", "lost")
LEAD_STATUSES = ("open", "converted", "lost")
OPP_TO_LEAD_STATUS = (0, 1, 2)  # opportunity open / won / lost -> lead status
LOSS_WEIGHTS = np.array(
    # price, unclear_needs, competitor, slow_response (order of schema.LOSS_REASONS)
    [
        [0.20, 0.55, 0.10, 0.15],  # lost at needs_confirmed
        [0.50, 0.15, 0.20, 0.15],  # lost at proposal
        [0.45, 0.05, 0.40, 0.10],  # lost at negotiation
    ]
)
OPP_NOTES = (
    "客户预算已批",
    "需要与IT部门确认",
    "Decision maker: 采购总监",
    "竞品报价更低",
    "等待客户内部评审",
    "Follow up next week",
    "客户要求提供案例",
    "试用反馈良好",
    "Budget approved for next quarter",
    "需要法务审核合同",
    "价格敏感，考虑分期付款",
    "老板亲自参与谈判",
    "Requested a discount of 5%",
    "客户希望下月上线",
)
TRICKY_NOTES = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '=HYPERLINK("http://x","y")',
    "+86 客户要求回电",
    "-5% 折扣已申请",
    "@财务 请确认开票信息",
    "=1+2",
    '客户说 "下周再谈", 报价需调整',
)
ACTIVITY_TYPES = ("call", "visit", "email", "wechat", "meeting")
ACTIVITY_TYPE_WEIGHTS = (0.38, 0.12, 0.15, 0.25, 0.10)
CUSTOMER_ACTIVITY_WEIGHTS = (0.40, 0.15, 0.10, 0.30, 0.05)
ACTIVITY_NOTES = (
    ("电话跟进，了解需求", "电话未接通，稍后再拨", "电话确认报价细节", "电话回访使用情况"),
    ("上门拜访，演示产品", "现场调研业务流程", "拜访关键决策人"),
    ("发送产品资料", "发送报价单", "邮件确认合同条款", "发送会议纪要"),
    ("微信沟通需求", "微信发送案例资料", "微信提醒付款", "微信确认会议时间"),
    ("线上会议讲解方案", "商务谈判会议", "项目启动会"),
)
NOTE_FIRST_CONTACT = "首次联系客户"
NOTE_CARE = "客户关怀回访"
TICKET_TYPES = ("request", "complaint")
TICKET_NOTES = (
    (
        "咨询发票开具",
        "申请增加账号",
        "咨询续费方案",
        "需要培训资料",
        "数据导出问题咨询",
        "修改联系人信息",
        "咨询合同条款",
    ),
    ("服务响应太慢", "交付延期，客户不满", "账单金额有误", "系统故障影响业务", "对客服态度不满意", "功能与宣传不符"),
)
VISIT_CHANNELS = ("web", "app", "store")
VISIT_CHANNEL_WEIGHTS = (0.55, 0.35, 0.10)
XLSX_TIMESTAMP = _dt.datetime(2026, 3, 31, 18, 0, 0)

Progress = Callable[[str], None]
ColumnFn = Callable[[int, int], pa.Array]

# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def _n(base: float, scale: float, minimum: int = 1) -> int:
    """Return a scaled count, at least ``minimum``."""
    return max(minimum, int(round(base * scale)))


def _days(rng: np.random.Generator, lo: int, hi: int, n: int, weekend: float = 0.3) -> np.ndarray:
    """Return ``n`` random midnights in [lo, hi), weekends less likely."""
    days = np.arange(lo // DAY, -(-hi // DAY), dtype=np.int64)
    w = np.where((days + 3) % 7 >= 5, weekend, 1.0)
    return rng.choice(days, size=n, p=w / w.sum()) * DAY


def _office_time(rng: np.random.Generator, n: int) -> np.ndarray:
    """Return ``n`` times of day in seconds, mostly office hours."""
    h = np.where(rng.random(n) < 0.5, rng.normal(10.2, 1.3, n), rng.normal(15.3, 1.8, n))
    odd = (h < 7.5) | (h > 22.0)
    h = np.where(odd, rng.uniform(8.5, 18.0, n), h)
    return (h * HOUR).astype(np.int64)


def _snap(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Move each moment to an office time on the same day."""
    return t // DAY * DAY + _office_time(rng, len(t))


def _gamma_seconds(rng: np.random.Generator, mean_days: float, shape: float, n: int) -> np.ndarray:
    """Return gamma-distributed durations in seconds."""
    return (rng.gamma(shape, mean_days / shape, n) * DAY).astype(np.int64)


def _pick(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Draw one column index per row of a row-stochastic (unnormalised) matrix."""
    cum = np.cumsum(p, axis=1)
    u = rng.random(len(p)) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), p.shape[1] - 1)


def _group_starts(counts: np.ndarray) -> np.ndarray:
    """Return the first position of each group in a repeated array."""
    return np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)


def _grouped_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each group of a repeated array."""
    cum = np.cumsum(values)
    if len(values) == 0:
        return cum
    st = _group_starts(counts)
    has = counts > 0
    base = np.zeros(len(counts), dtype=cum.dtype)
    base[has] = cum[st[has]] - values[st[has]]
    return cum - np.repeat(base, counts)


def _rank_in_group(group: np.ndarray) -> np.ndarray:
    """Return 0, 1, 2, ... within runs of equal values of a sorted array."""
    n = len(group)
    if n == 0:
        return np.zeros(0, np.int64)
    new = np.concatenate(([True], group[1:] != group[:-1]))
    start = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    return np.arange(n) - start


def _top_k(group: np.ndarray, key: np.ndarray, eligible: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Mark, in each group, the ``k[group]`` eligible rows with the largest key."""
    idx = np.flatnonzero(eligible)
    order = idx[np.lexsort((-key[idx], group[idx]))]
    rank = _rank_in_group(group[order])
    chosen = np.zeros(len(group), bool)
    chosen[order[rank < k[group[order]]]] = True
    return chosen


def _unique_redraw(
    rng: np.random.Generator, codes: Callable[[], np.ndarray], redraw: Callable[[np.ndarray], None]
) -> None:
    """Redraw rows whose code repeats an earlier row until all codes are unique."""
    for _ in range(50):
        c = codes()
        _, first = np.unique(c, return_index=True)
        dup = np.ones(len(c), bool)
        dup[first] = False
        if not dup.any():
            return
        redraw(np.flatnonzero(dup))
    raise RuntimeError("could not make values unique")


def _sort_order(*keys: np.ndarray) -> np.ndarray:
    """Return a stable order by the given keys (first key most significant)."""
    return np.lexsort(tuple(reversed(keys)))


def _ranks(order: np.ndarray) -> np.ndarray:
    """Invert a permutation: position of each row in ``order``."""
    r = np.empty(len(order), np.int64)
    r[order] = np.arange(len(order))
    return r


# ---------------------------------------------------------------------------
# string formatting (pyarrow, vectorised)
# ---------------------------------------------------------------------------

_NEEDS_QUOTES = re.compile(r'[",\r\n]')


def _quote_list(values: tuple[str, ...] | list[str]) -> pa.Array:
    """Return CSV-quoted strings as an arrow array."""
    return pa.array(['"' + v.replace('"', '""') + '"' if _NEEDS_QUOTES.search(v) else v for v in values])


def _quote(arr: pa.Array) -> pa.Array:
    """CSV-quote the values of a string array that need it."""
    need = pc.or_(
        pc.or_(pc.match_substring(arr, ","), pc.match_substring(arr, '"')),
        pc.or_(pc.match_substring(arr, "\n"), pc.match_substring(arr, "\r")),
    )
    if not pc.any(need).as_py():
        return arr
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(arr, '"', '""'), '"', "")
    return pc.if_else(need, quoted, arr)


def _validity(valid: np.ndarray) -> pa.Buffer | None:
    """Return an arrow validity bitmap, or None when all are valid."""
    if valid.all():
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def _fixed_strings(buf: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Turn an (n, w) uint8 matrix of ASCII into an arrow string array."""
    n, w = buf.shape
    offsets = np.arange(0, w * (n + 1), w, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [_validity(valid), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(buf))]
    )


def _day_table(d0: int, d1: int) -> np.ndarray:
    """Return 'YYYY-MM-DD' bytes for epoch days d0..d1 as an (n, 10) uint8 matrix."""
    s = np.arange(d0, d1 + 1).astype("datetime64[D]").astype("S10")
    return np.frombuffer(s.tobytes(), dtype=np.uint8).reshape(-1, 10)


def _clock_table() -> np.ndarray:
    """Return ' HH:MM:SS' bytes for every second of a day as an (86400, 9) uint8 matrix."""
    t = np.arange(DAY)
    out = np.empty((DAY, 9), np.uint8)
    out[:, 0] = ord(" ")
    out[:, 3] = out[:, 6] = ord(":")
    for pos, v in ((1, t // HOUR), (4, t // 60 % 60), (7, t % 60)):
        out[:, pos] = 48 + v // 10
        out[:, pos + 1] = 48 + v % 10
    return out


_CLOCK = _clock_table()


def _fmt_datetime(sec: np.ndarray) -> pa.Array:
    """Format seconds as 'YYYY-MM-DD HH:MM:SS' (NAT -> null)."""
    valid = sec != NAT
    s = np.where(valid, sec, START)
    days = s // DAY
    d0 = int(days.min()) if len(days) else 0
    table = _day_table(d0, int(days.max()) if len(days) else 0)
    buf = np.empty((len(s), 19), np.uint8)
    buf[:, :10] = table[days - d0]
    buf[:, 10:] = _CLOCK[s - days * DAY]
    return _fixed_strings(buf, valid)


def _fmt_date(sec: np.ndarray) -> pa.Array:
    """Format seconds as 'YYYY-MM-DD' (NAT -> null)."""
    valid = sec != NAT
    days = np.where(valid, sec, START) // DAY
    d0 = int(days.min()) if len(days) else 0
    return _fixed_strings(_day_table(d0, int(days.max()) if len(days) else 0)[days - d0], valid)


def _fmt_local(sec: np.ndarray, style: str) -> pa.Array:
    """Format seconds as '2025/3/4 10:05' (style 'slash') or '2025年3月4日 10:05' ('chinese')."""
    days = sec // DAY
    d0, d1 = int(days.min()), int(days.max())
    dd = np.arange(d0, d1 + 1).astype("datetime64[D]")
    y = dd.astype("datetime64[Y]").astype(int) + 1970
    m = dd.astype("datetime64[M]").astype(int) % 12 + 1
    d = (dd - dd.astype("datetime64[M]")).astype(int) + 1
    if style == "slash":
        labels = [f"{a}/{b}/{c}" for a, b, c in zip(y, m, d)]
    else:
        labels = [f"{a}年{b}月{c}日" for a, b, c in zip(y, m, d)]
    minutes = [f"{h}:{mi:02d}" for h in range(24) for mi in range(60)]
    day_part = pa.array(labels).take(pa.array(days - d0))
    clock = pa.array(minutes).take(pa.array((sec - days * DAY) // 60))
    return pc.binary_join_element_wise(day_part, clock, " ")


def _fmt_money(x: np.ndarray) -> pa.Array:
    """Format amounts with two decimals (NaN -> null)."""
    valid = ~np.isnan(x)
    cents = np.round(np.where(valid, x, 0.0) * 100).astype(np.int64)
    whole = pa.array(cents // 100, mask=~valid).cast(pa.string())
    frac = pa.array([f"{i:02d}" for i in range(100)]).take(pa.array(cents % 100))
    return pc.binary_join_element_wise(whole, frac, ".")


def _fmt_ids(prefix: str, idx: np.ndarray, width: int) -> pa.Array:
    """Format 0-based numbers as ids like 'C000123' (negative -> null)."""
    num = pa.array(idx + 1, mask=idx < 0).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(num, width=width, padding="0"), "")


def _width(n: int, base: int) -> int:
    """Return the id width: ``base`` digits, more when needed."""
    return max(base, len(str(max(n, 1))))


def _col_ids(prefix: str, idx: np.ndarray, base_width: int, n_total: int) -> ColumnFn:
    """Column of ids built from 0-based numbers."""
    width = _width(n_total, base_width)
    return lambda lo, hi: _fmt_ids(prefix, idx[lo:hi], width)


def _col_datetime(sec: np.ndarray) -> ColumnFn:
    """Column of ISO datetimes."""
    return lambda lo, hi: _fmt_datetime(sec[lo:hi])


def _col_cat(vocab: tuple[str, ...] | list[str], codes: np.ndarray) -> ColumnFn:
    """Column of strings from a vocabulary (code -1 -> empty)."""
    voc = _quote_list(list(vocab))
    return lambda lo, hi: voc.take(pa.array(codes[lo:hi], mask=codes[lo:hi] < 0))


def _col_text(arr: pa.Array) -> ColumnFn:
    """Column of prebuilt strings, CSV-quoted where needed."""
    return lambda lo, hi: _quote(arr.slice(lo, hi - lo))


def _col_money(x: np.ndarray) -> ColumnFn:
    """Column of amounts with two decimals."""
    return lambda lo, hi: _fmt_money(x[lo:hi])


def _col_int(x: np.ndarray) -> ColumnFn:
    """Column of integers (negative -> empty)."""
    return lambda lo, hi: pa.array(x[lo:hi], mask=x[lo:hi] < 0).cast(pa.string())


def _write_csv(path: Path, n: int, columns: dict[str, ColumnFn], bom: bool = False, chunk: int = 400_000) -> None:
    """Write a CSV (comma separated, minimal quoting, '\\n' line ends) chunk by chunk."""
    with open(path, "wb") as f:
        if bom:
            f.write(b"\xef\xbb\xbf")
        f.write((",".join(columns) + "\n").encode("utf-8"))
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            parts = [fn(lo, hi) for fn in columns.values()]
            line = pc.binary_join_element_wise(*parts, ",", null_handling="replace", null_replacement="")
            line = pc.binary_join_element_wise(line, "", "\n")
            if isinstance(line, pa.ChunkedArray):
                line = line.combine_chunks()
            if line.type == pa.large_string():
                off_type: Any = np.int64
            else:
                off_type = np.int32
            offsets = np.frombuffer(line.buffers()[1], dtype=off_type)[line.offset : line.offset + len(line) + 1]
            data = line.buffers()[2]
            f.write(memoryview(data)[int(offsets[0]) : int(offsets[-1])])


def _write_xlsx(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    """Write one sheet 'campaigns' with fixed metadata and zip timestamps."""
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    wb = Workbook()
    ws = wb.active
    ws.title = "campaigns"
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.properties.created = XLSX_TIMESTAMP
    wb.properties.modified = XLSX_TIMESTAMP
    wb.properties.creator = "crmnb demo"
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).write_data()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw.getvalue())) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=XLSX_TIMESTAMP.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, src.read(info.filename))
    path.write_bytes(out.getvalue())


# ---------------------------------------------------------------------------
# people
# ---------------------------------------------------------------------------

_SUR_H = pa.array([s for s, _ in SURNAMES])
_SUR_P = pa.array([p for _, p in SURNAMES])
_GIV_H = pa.array([g for g, _ in GIVEN_NAMES])
_GIV_P = pa.array([p for _, p in GIVEN_NAMES])
_SUR_PID = np.unique([p for _, p in SURNAMES], return_inverse=True)[1]
_GIV_PID = np.unique([p for _, p in GIVEN_NAMES], return_inverse=True)[1]
_IND_WORDS = [w for _, ws in INDUSTRIES for w in ws]
_IND_WORD_START = np.cumsum([0] + [len(ws) for _, ws in INDUSTRIES])[:-1]
_IND_WORD_COUNT = np.array([len(ws) for _, ws in INDUSTRIES])


class People:
    """Contact persons and their companies, as codes; strings are built on demand."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.n = n
        self.sur = rng.integers(0, len(SURNAMES), n)
        self.giv = rng.integers(0, len(GIVEN_NAMES), n)
        self.prefix = np.asarray(MOBILE_PREFIXES)[rng.integers(0, len(MOBILE_PREFIXES), n)]
        self.mobile = self.prefix * 10**8 + rng.integers(0, 10**8, n)
        self.pattern = rng.integers(0, 3, n)
        self.num = rng.integers(1, 1000, n)
        self.domain = (rng.random(n) < 0.3).astype(np.int64)
        self.city = rng.choice(len(CITIES), n, p=np.asarray(CITY_WEIGHTS) / sum(CITY_WEIGHTS))
        self.industry = rng.choice(len(INDUSTRIES), n, p=np.asarray(INDUSTRY_WEIGHTS) / sum(INDUSTRY_WEIGHTS))
        self.word = _IND_WORD_START[self.industry] + (rng.random(n) * _IND_WORD_COUNT[self.industry]).astype(np.int64)
        self.b1 = rng.integers(0, len(BRAND_FIRST), n)
        self.b2 = rng.integers(0, len(BRAND_SECOND), n)

        def redraw_mobile(i: np.ndarray) -> None:
            self.mobile[i] = self.prefix[i] * 10**8 + rng.integers(0, 10**8, len(i))

        def redraw_num(i: np.ndarray) -> None:
            self.num[i] = rng.integers(1, 100_000, len(i))

        _unique_redraw(rng, lambda: self.mobile, redraw_mobile)
        _unique_redraw(rng, self._email_code, redraw_num)

    def _email_code(self) -> np.ndarray:
        """Return one integer per e-mail address (equal codes = equal addresses)."""
        c = self.pattern * len(SURNAMES) + _SUR_PID[self.sur]
        c = c * len(GIVEN_NAMES) + _GIV_PID[self.giv]
        return (c * 100_000 + self.num) * 2 + self.domain

    def name(self, i: np.ndarray, sep: str = "") -> pa.Array:
        """Contact names like 王磊 (``sep`` between surname and given name)."""
        return pc.binary_join_element_wise(_SUR_H.take(pa.array(self.sur[i])), _GIV_H.take(pa.array(self.giv[i])), sep)

    def phone(self, i: np.ndarray) -> pa.Array:
        """Mobile numbers, 11 digits."""
        return pa.array(self.mobile[i]).cast(pa.string())

    def email(self, i: np.ndarray) -> pa.Array:
        """E-mail addresses like zhangwei88@example.com."""
        s = _SUR_P.take(pa.array(self.sur[i]))
        g = _GIV_P.take(pa.array(self.giv[i]))
        num = pa.array(self.num[i]).cast(pa.string())
        pat = self.pattern[i]
        local = pc.if_else(
            pa.array(pat == 0),
            pc.binary_join_element_wise(s, g, num, ""),
            pc.if_else(
                pa.array(pat == 1),
                pc.binary_join_element_wise(g, ".", s, num, ""),
                pc.binary_join_element_wise(s, "_", g, num, ""),
            ),
        )
        return pc.binary_join_element_wise(local, pa.array(EMAIL_DOMAINS).take(pa.array(self.domain[i])), "@")

    def company(self, i: np.ndarray, suffix: str = "有限公司") -> pa.Array:
        """Company names like 杭州云启科技有限公司."""
        return pc.binary_join_element_wise(
            pa.array(CITIES).take(pa.array(self.city[i])),
            pa.array(BRAND_FIRST).take(pa.array(self.b1[i])),
            pa.array(BRAND_SECOND).take(pa.array(self.b2[i])),
            pa.array(_IND_WORDS).take(pa.array(self.word[i])),
            suffix,
            "",
        )


def _masked(arr: pa.Array, missing: np.ndarray) -> pa.Array:
    """Set the values where ``missing`` is true to null."""
    if not missing.any():
        return arr
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), arr)


# ---------------------------------------------------------------------------
# the generator
# ---------------------------------------------------------------------------


class _Demo:
    """One generation run: builds every table as numpy arrays, then writes them."""

    def __init__(self, scale: float, seed: int) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = float(scale)
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)
        self.planted: dict[str, Any] = {}

    # -- organisation ------------------------------------------------------

    def reps(self) -> None:
        """Sales reps: 5-8 per department, Chinese names, workload and speed."""
        rng = self.rng
        counts = rng.integers(5, 9, len(DEPARTMENTS))
        total = int(counts.sum())
        combo = rng.choice(len(SURNAMES) * len(GIVEN_NAMES), total, replace=False)
        self.rep_name = [SURNAMES[c // len(GIVEN_NAMES)][0] + GIVEN_NAMES[c % len(GIVEN_NAMES)][0] for c in combo]
        self.rep_dept = np.repeat(np.arange(len(DEPARTMENTS)), counts)
        self.rep_load = rng.uniform(0.6, 1.4, total)
        self.rep_speed = np.exp(rng.normal(0.0, 0.15, total))

    def pick_reps(self, dept: np.ndarray) -> np.ndarray:
        """Pick a rep of the given department for each row."""
        out = np.empty(len(dept), np.int64)
        for d in range(len(DEPARTMENTS)):
            m = dept == d
            idx = np.flatnonzero(self.rep_dept == d)
            out[m] = self.rng.choice(idx, int(m.sum()), p=self.rep_load[idx] / self.rep_load[idx].sum())
        return out

    # -- leads and funnel --------------------------------------------------

    def leads(self) -> None:
        """Leads per department and quarter, response times, funnel outcome."""
        rng, s = self.rng, self.scale
        n_pre = _n(PRE_EXISTING_CUSTOMERS, s, 20)
        created, dept, quarter = [], [], []
        for q in range(len(LEADS_PER_QUARTER)):
            for d in range(len(DEPARTMENTS)):
                n = _n(LEADS_PER_QUARTER[q], s, 20)
                t = _days(rng, QUARTER_STARTS[q], QUARTER_STARTS[q + 1], n) + _office_time(rng, n)
                created.append(np.minimum(t, EXPORT_END))
                dept.append(np.full(n, d))
                quarter.append(np.full(n, q))
        created_a = np.concatenate(created)
        order = np.argsort(created_a, kind="stable")
        self.l_created = created_a[order]
        self.l_dept = np.concatenate(dept)[order]
        self.l_quarter = np.concatenate(quarter)[order]
        n = len(self.l_created)
        self.n_leads = n

        # pre-existing customers (needed for leads of existing customers)
        self.n_pre = n_pre
        pre_created = _days(rng, HISTORY_START, START, n_pre) + _office_time(rng, n_pre)
        self.pre_created = np.sort(pre_created)
        self.pre_dept = rng.integers(0, len(DEPARTMENTS), n_pre)
        self.pre_rep = self.pick_reps(self.pre_dept)
        self.pre_channel = rng.choice(len(CHANNELS), n_pre, p=PRE_CHANNEL_WEIGHTS)

        self.l_rep = self.pick_reps(self.l_dept)
        existing = rng.random(n) < EXISTING_LEAD_SHARE
        self.l_existing = np.full(n, -1)
        for d in range(len(DEPARTMENTS)):
            m = existing & (self.l_dept == d)
            cands = np.flatnonzero(self.pre_dept == d)
            self.l_existing[m] = cands[rng.integers(0, len(cands), int(m.sum()))]
        self.l_rep = np.where(self.l_existing >= 0, self.pre_rep[np.maximum(self.l_existing, 0)], self.l_rep)

        # people: pre-existing customers first, then each new lead
        new_lead = self.l_existing < 0
        self.people = People(rng, n_pre + int(new_lead.sum()))
        self.pre_person = np.arange(n_pre)
        self.l_person = np.where(new_lead, n_pre + np.cumsum(new_lead) - 1, self.l_existing)
        self.l_email_missing = rng.random(n) < 0.08

        # response time
        after = (self.l_dept == 0) & (self.l_created >= INTERVENTION)
        median = RESPONSE_MEDIAN_H * np.where(after, 0.5, 1.0) * self.rep_speed[self.l_rep]
        hours = np.clip(median * np.exp(rng.normal(0.0, RESPONSE_SIGMA, n)), 0.05, 24 * 30)
        self.l_resp_h = hours
        never = rng.random(n) < NEVER_CONTACTED
        fc = (self.l_created + (hours * HOUR).astype(np.int64)) // 60 * 60  # minutes, as the first task
        self.l_never = never
        self.l_first_contact = np.where(never | (fc > EXPORT_END), NAT, fc)

        self.funnel()
        self.channels_and_touches()

    def conversion_target(self, dept: int, quarter: int) -> float:
        """Return the planned lead conversion of a department-quarter."""
        if dept == 0:
            return CONVERSION["sales_after"] if QUARTER_STARTS[quarter] >= INTERVENTION else CONVERSION["sales_before"]
        return CONVERSION["control"]

    def funnel(self) -> None:
        """Decide how far each lead gets, then the opportunity timeline."""
        rng = self.rng
        n = self.n_leads
        n_cells = len(LEADS_PER_QUARTER) * len(DEPARTMENTS)
        cell = self.l_quarter * len(DEPARTMENTS) + self.l_dept
        cell_n = np.bincount(cell, minlength=n_cells)
        k_won = np.zeros(n_cells, np.int64)
        k_neg = np.zeros(n_cells, np.int64)
        k_prop = np.zeros(n_cells, np.int64)
        k_needs = np.zeros(n_cells, np.int64)
        for c in range(n_cells):
            q, d = divmod(c, len(DEPARTMENTS))
            w = self.conversion_target(d, q) + float(np.clip(rng.normal(0.0, 0.003), -0.007, 0.007))
            g = (w / CONVERSION["sales_before"]) ** 0.25
            b, cc, dd = (p * g for p in STAGE_PASS)
            k_won[c] = round(cell_n[c] * w)
            k_neg[c] = round(k_won[c] / dd)
            k_prop[c] = round(k_neg[c] / cc)
            k_needs[c] = round(k_prop[c] / b)
        lr = -np.log(self.l_resp_h / RESPONSE_MEDIAN_H)
        contacted = ~self.l_never  # planned contact (timing may fall after the export)
        gumbel = lambda: rng.gumbel(0.0, 1.0, n)
        needs = _top_k(cell, 0.5 * lr + 0.5 * (self.l_existing >= 0) + gumbel(), contacted, k_needs)
        prop = _top_k(cell, 0.2 * lr + gumbel(), needs, k_prop)
        neg = _top_k(cell, 0.15 * lr + gumbel(), prop, k_neg)
        won = _top_k(cell, 0.15 * lr + gumbel(), neg, k_won)
        final = needs.astype(np.int64) + prop + neg + won  # 0 none, 1 needs .. 4 won

        # opportunity timeline for leads that reach needs_confirmed
        opp_leads = np.flatnonzero(final >= 1)
        m = len(opp_leads)
        fs = final[opp_leads]
        fc_planned = self.l_created[opp_leads] + (self.l_resp_h[opp_leads] * HOUR).astype(np.int64)
        created = fc_planned + _gamma_seconds(rng, 4.0, 1.5, m)
        dwell = np.stack([_gamma_seconds(rng, STAGE_DWELL_DAYS[k], 2.0, m) for k in range(3)], axis=1)
        entered = np.full((m, 4), NAT)
        entered[:, 0] = created
        for k in range(1, 4):
            entered[:, k] = np.where(fs >= k + 1, entered[:, k - 1] + dwell[:, k - 1], NAT)
        lost_stage = np.where(fs < 4, fs - 1, -1)  # 0 needs, 1 proposal, 2 negotiation
        stall = (dwell[np.arange(m), np.maximum(lost_stage, 0)] * rng.uniform(0.9, 1.8, m)).astype(np.int64)
        lost_at = np.where(fs < 4, entered[np.arange(m), np.maximum(lost_stage, 0)] + stall, NAT)

        exists = created <= EXPORT_END
        keep = np.flatnonzero(exists)
        opp_leads, fs, entered, lost_stage, lost_at = (
            opp_leads[keep],
            fs[keep],
            entered[keep],
            lost_stage[keep],
            lost_at[keep],
        )
        entered = np.where(entered > EXPORT_END, NAT, entered)
        is_won = entered[:, 3] != NAT
        is_lost = (lost_at != NAT) & (lost_at <= EXPORT_END)
        lost_at = np.where(is_lost, lost_at, NAT)
        status = np.where(is_won, 1, np.where(is_lost, 2, 0))
        last_entered = (entered[:, :3] != NAT).sum(axis=1) - 1
        stage = np.where(is_won, 3, np.where(is_lost, 4, last_entered))
        closed = np.where(is_won, entered[:, 3], lost_at)

        # loss reasons: stage-dependent, slow first response -> slow_response
        mo = len(opp_leads)
        w = LOSS_WEIGHTS[np.maximum(lost_stage, 0)].copy()
        slow = self.l_resp_h[opp_leads] > 48
        w[:, 3] *= np.where(slow, 3.0, 1.0)
        reason = np.where(is_lost, _pick(rng, w), -1)

        amount = np.clip(np.exp(rng.normal(np.log(OPP_AMOUNT_MEDIAN), OPP_AMOUNT_SIGMA, mo)), 3_000, 1_000_000)
        amount = np.round(amount, -2)
        note = np.where(rng.random(mo) < 0.7, rng.integers(0, len(OPP_NOTES), mo), -1)

        order = np.argsort(entered[:, 0], kind="stable")
        self.o_lead = opp_leads[order]
        self.o_created = entered[order, 0]
        self.o_entered = entered[order]
        self.o_lost_at = lost_at[order]
        self.o_status = status[order]
        self.o_stage = stage[order]
        self.o_closed = closed[order]
        self.o_reason = reason[order]
        self.o_amount = amount[order]
        self.o_note = note[order]
        self.o_dept = self.l_dept[self.o_lead]
        self.o_rep = self.l_rep[self.o_lead]
        n_opp = len(self.o_lead)
        tricky = rng.choice(n_opp, min(len(TRICKY_NOTES), n_opp), replace=False)
        self.o_note[tricky] = len(OPP_NOTES) + np.arange(len(tricky))
        self.tricky = np.sort(tricky)

        # lead status
        l_opp = np.full(n, -1)
        l_opp[self.o_lead] = np.arange(n_opp)
        self.l_opp = l_opp
        has_fc = self.l_first_contact != NAT
        opp_status = np.where(l_opp >= 0, self.o_status[np.maximum(l_opp, 0)], -1)
        planned_opp = final >= 1
        lost_old_lead = np.where(
            has_fc, self.l_first_contact < EXPORT_END - 30 * DAY, self.l_created < EXPORT_END - 14 * DAY
        )
        lead_status = np.select(
            [
                opp_status >= 0,  # open / won / lost opportunity
                planned_opp & has_fc,  # opportunity not opened by the export date
                ~has_fc & ~self.l_never,  # contact due after the export date
            ],
            [np.asarray(OPP_TO_LEAD_STATUS)[np.maximum(opp_status, 0)], 0, 0],
            np.where(lost_old_lead, 2, 0),
        )
        self.l_status = lead_status

    def channels_and_touches(self) -> None:
        """Marketing touches per lead; the last one sets lead.channel and campaign."""
        rng = self.rng
        n = self.n_leads
        camp_ch = np.array([CHANNELS.index(c[0]) for c in CAMPAIGNS])
        camp_start = np.array([_ts(c[2]) for c in CAMPAIGNS])
        camp_end = np.array([_ts(c[3]) + DAY for c in CAMPAIGNS])  # exclusive
        self.camp_ch, self.camp_start, self.camp_end = camp_ch, camp_start, camp_end

        def lookup(t: np.ndarray, ch: np.ndarray, lead_window: bool) -> np.ndarray:
            """Return the campaign of channel ``ch`` active at ``t`` (or -1)."""
            out = np.full(len(t), -1)
            for c in range(len(CHANNELS)):
                ids = np.flatnonzero(camp_ch == c)
                m = ch == c
                if not m.any():
                    continue
                j = np.searchsorted(camp_start[ids], t[m], side="right") - 1
                end = camp_end[ids] + (TRADE_SHOW_FOLLOW_UP_DAYS * DAY if (lead_window and c == TRADE_SHOW) else 0)
                ok = (j >= 0) & (t[m] < end[np.maximum(j, 0)])
                out[m] = np.where(ok, ids[np.maximum(j, 0)], -1)
            return out

        def channel_at(t: np.ndarray, lead_window: bool) -> tuple[np.ndarray, np.ndarray]:
            """Draw a channel with an active campaign at ``t`` and return (channel, campaign)."""
            avail = np.stack([lookup(t, np.full(len(t), c), lead_window) >= 0 for c in range(len(CHANNELS))], axis=1)
            ch = _pick(rng, avail * np.asarray(LEAD_CHANNEL_WEIGHTS))
            return ch, lookup(t, ch, lead_window)

        t = self.l_created
        ch, camp = channel_at(t, True)
        lag = (rng.exponential(1.5, n) * DAY).astype(np.int64) + 600
        cs = camp_start[camp]
        last = np.where(t - lag > cs, t - lag, cs + ((t - cs) * rng.random(n)).astype(np.int64))
        show = ch == TRADE_SHOW
        event_end = np.minimum(camp_end[camp], t)
        last = np.where(show, cs + ((event_end - cs) * rng.random(n)).astype(np.int64), last)
        self.l_channel, self.l_campaign = ch, camp

        n_touch = rng.choice(4, n, p=[0.35, 0.30, 0.22, 0.13]) + 1
        extra = n_touch - 1
        lead = np.repeat(np.arange(n), extra)
        gaps = (rng.exponential(8.0, len(lead)) * DAY).astype(np.int64) + HOUR
        cum = _grouped_cumsum(gaps, extra)
        tt = last[lead] - cum
        keep = tt >= START
        lead, tt = lead[keep], tt[keep]
        _, ecamp = channel_at(tt, False)
        ok = ecamp >= 0
        touch_lead = np.concatenate([np.arange(n), lead[ok]])
        touch_time = np.concatenate([last, tt[ok]])
        touch_camp = np.concatenate([camp, ecamp[ok]])
        order = _sort_order(touch_time, touch_lead)
        self.t_lead = touch_lead[order]
        self.t_time = touch_time[order]
        self.t_camp = touch_camp[order]

    # -- accounts ----------------------------------------------------------

    def accounts(self) -> None:
        """Accounts: pre-existing customers, won customers, prospects, duplicates."""
        rng = self.rng
        o_lead = self.o_lead
        new_acc = self.l_existing[o_lead] < 0
        won = self.o_status == 1
        # kind 0 pre-existing, 1 won, 2 prospect, 3 duplicate
        opp_new = np.flatnonzero(new_acc)
        n_new = len(opp_new)
        kind = np.concatenate([np.zeros(self.n_pre, np.int64), np.where(won[opp_new], 1, 2)])
        created = np.concatenate(
            [self.pre_created, np.where(won[opp_new], self.o_closed[opp_new], self.o_created[opp_new])]
        )
        dept = np.concatenate([self.pre_dept, self.o_dept[opp_new]])
        rep = np.concatenate([self.pre_rep, self.o_rep[opp_new]])
        channel = np.concatenate([self.pre_channel, self.l_channel[o_lead[opp_new]]])
        person = np.concatenate([self.pre_person, self.l_person[o_lead[opp_new]]])
        o_acc = np.where(new_acc, -1, self.l_existing[o_lead])
        o_acc[opp_new] = self.n_pre + np.arange(n_new)
        self.o_acc = o_acc
        # won deal amount defines the size of a new customer
        size = np.concatenate(
            [
                np.round(
                    np.clip(np.exp(rng.normal(np.log(PRE_SIZE_MEDIAN), OPP_AMOUNT_SIGMA, self.n_pre)), 3000, 1e6), -2
                ),
                self.o_amount[opp_new],
            ]
        )
        self.a_kind, self.a_created, self.a_dept, self.a_rep = kind, created, dept, rep
        self.a_channel, self.a_person, self.a_size = channel, person, size
        self.a_orig = np.arange(len(kind))  # the real customer behind a record
        conv = self.l_opp >= 0
        conv &= np.where(conv, self.o_status[np.maximum(self.l_opp, 0)] == 1, False)
        self.l_customer = np.where(conv, o_acc[np.maximum(self.l_opp, 0)], -1)

    def duplicates_and_gaps(self) -> None:
        """Plant duplicate customer records and missing phone / e-mail cells."""
        rng = self.rng
        n_acc = len(self.a_kind)
        buyer = self.a_kind <= 1
        cands = np.flatnonzero(buyer & (self.a_created < EXPORT_END - 90 * DAY))
        n_dup = max(3, int(round(0.015 * n_acc)))
        orig = np.sort(rng.choice(cands, n_dup, replace=False))
        lo = np.maximum(self.a_created[orig] + 20 * DAY, START)
        hi = np.maximum(np.minimum(lo + 450 * DAY, EXPORT_END - 30 * DAY), lo + DAY)
        d_created = _snap(rng, lo + ((hi - lo) * rng.random(n_dup)).astype(np.int64))
        other = rng.random(n_dup) < 0.5
        d_dept = np.where(other, 1 - self.a_dept[orig], self.a_dept[orig])
        d_rep = self.pick_reps(d_dept)
        d_variant = rng.integers(0, 3, n_dup)  # 0 extra space, 1 full-width, 2 no 有限公司
        d_phone_fmt = rng.integers(0, 3, n_dup)  # 0 same, 1 138-1234-5678, 2 +86 138...
        d_email_case = rng.integers(0, 2, n_dup)  # 0 upper, 1 capitalised
        self.dup = {
            "orig": orig,
            "created": d_created,
            "dept": d_dept,
            "rep": d_rep,
            "variant": d_variant,
            "phone_fmt": d_phone_fmt,
            "email_case": d_email_case,
        }
        self.a_kind = np.concatenate([self.a_kind, np.full(n_dup, 3)])
        self.a_created = np.concatenate([self.a_created, d_created])
        self.a_dept = np.concatenate([self.a_dept, d_dept])
        self.a_rep = np.concatenate([self.a_rep, d_rep])
        self.a_channel = np.concatenate([self.a_channel, self.a_channel[orig]])
        self.a_person = np.concatenate([self.a_person, self.a_person[orig]])
        self.a_size = np.concatenate([self.a_size, self.a_size[orig]])
        self.a_orig = np.concatenate([self.a_orig, orig])
        self.dup_idx = n_acc + np.arange(n_dup)

        # missing contact fields, never on duplicated customers
        protected = np.zeros(len(self.a_kind), bool)
        protected[orig] = True
        protected[self.dup_idx] = True
        self.a_no_phone = (rng.random(len(self.a_kind)) < 0.03) & ~protected
        self.a_no_email = (rng.random(len(self.a_kind)) < 0.05) & ~protected

        # customer ids by creation time
        order = np.argsort(self.a_created, kind="stable")
        self.a_rank = _ranks(order)
        self.a_order = order

    # -- orders ------------------------------------------------------------

    def orders(self) -> None:
        """Deal orders, BG/NBD-like repeat orders, churn."""
        rng = self.rng
        n_acc = len(self.a_kind)
        buyers = np.flatnonzero(self.a_kind <= 1)
        nb = len(buyers)
        pre = self.a_kind[buyers] == 0
        created = self.a_created[buyers]
        lam = np.minimum(rng.gamma(PURCHASE_RATE_SHAPE, PURCHASE_RATE_MEAN / PURCHASE_RATE_SHAPE, nb), 4.0) / MONTH
        unhappy = rng.normal(0.0, 1.0, nb)
        p_drop = np.clip(rng.beta(2.0, 14.0, nb) * np.exp(0.45 * unhappy - 0.1), 0.02, 0.8)
        # customer mean repeat spend = p / nu with nu ~ Gamma(q): the Gamma-Gamma spend model's own shape,
        # scaled mildly with the first deal's size (big accounts reorder bigger)
        nu = rng.gamma(REPEAT_SPEND_Q, 1.0, nb) / (REPEAT_SPEND_Q - 1.0)
        mean_amt = (REPEAT_SPEND_MEDIAN * (self.a_size[buyers] / OPP_AMOUNT_MEDIAN) ** REPEAT_SIZE_ELASTICITY) / nu
        care = np.where(self.a_dept[buyers] == 1, CARE_RATE_FACTOR, 1.0)

        # history before 2024 for pre-existing customers
        hist_n = np.where(pre, rng.poisson(lam * np.maximum(START - created, 0)), 0)
        hist_c = np.repeat(np.arange(nb), hist_n)
        hist_t = created[hist_c] + (rng.random(len(hist_c)) * (START - created[hist_c])).astype(np.int64)

        # from s0 on: exponential gaps, dropout after each purchase
        s0 = np.where(pre, START, created)
        k = rng.geometric(p_drop) - np.where(pre, 0, 1)
        horizon = (EXPORT_END - s0) * lam * care
        k = np.minimum(k, np.ceil(horizon * 2 + 10).astype(np.int64))
        rep_c = np.repeat(np.arange(nb), k)
        gaps = rng.exponential(1.0, len(rep_c)) / lam[rep_c]
        cum = _grouped_cumsum(gaps, k)
        st = _group_starts(k)
        has = k > 0
        # operational time -> calendar time (care programme speeds up 客户服务部)
        a0 = np.where(s0 <= CARE_PROGRAM, s0, CARE_PROGRAM + care * (s0 - CARE_PROGRAM)).astype(np.float64)
        a = a0[rep_c] + cum
        cr = care[rep_c]
        t = np.where(a <= CARE_PROGRAM, a, CARE_PROGRAM + (a - CARE_PROGRAM) / cr)
        t = np.minimum(t, 4e9).astype(np.int64)
        last = np.where(k > 0, 0, s0).astype(np.int64)
        if len(rep_c):
            last_pos = st + k - 1
            last[has] = t[last_pos[has]]
        next_gap = (rng.exponential(1.0, nb) / lam).astype(np.int64)
        churn = np.where(last + next_gap <= EXPORT_END, last + next_gap, np.iinfo(np.int64).max)
        keep = t <= EXPORT_END
        rep_c, t = rep_c[keep], t[keep]

        # buyer-level arrays over all accounts
        self.b_index = buyers
        self.churn = np.full(n_acc, np.iinfo(np.int64).max)
        self.churn[buyers] = churn
        self.unhappy = np.zeros(n_acc)
        self.unhappy[buyers] = unhappy
        self.mean_amt = np.zeros(n_acc)
        self.mean_amt[buyers] = mean_amt

        won = np.flatnonzero(self.o_status == 1)
        first_pre = np.flatnonzero(pre)
        acc = np.concatenate([self.o_acc[won], buyers[first_pre], buyers[hist_c], buyers[rep_c]])
        when = np.concatenate([self.o_closed[won], created[first_pre], hist_t, t])
        opp = np.concatenate([won, np.full(len(first_pre) + len(hist_c) + len(rep_c), -1)])
        amount = np.concatenate(
            [
                self.o_amount[won],
                self.a_size[buyers[first_pre]],
                self.repeat_amount(buyers[hist_c]),
                self.repeat_amount(buyers[rep_c]),
            ]
        )
        self.r_acc, self.r_time, self.r_opp, self.r_amount = acc, when, opp, amount

    def repeat_amount(self, acc: np.ndarray) -> np.ndarray:
        """Repeat-order amounts around each customer's mean."""
        x = self.rng.gamma(3.0, 1.0, len(acc)) * self.mean_amt[acc] / 3.0
        return np.round(np.maximum(x, 200.0), 2)

    def reassign_to_duplicates(self, acc: np.ndarray, when: np.ndarray, movable: np.ndarray) -> np.ndarray:
        """Point about half of the later events of a duplicated customer to its duplicate record."""
        out = acc.copy()
        pos = np.full(len(self.a_kind), -1)
        pos[self.dup["orig"]] = np.arange(len(self.dup["orig"]))
        j = pos[acc]
        m = movable & (j >= 0)
        m &= when >= np.where(j >= 0, self.dup["created"][np.maximum(j, 0)], 0)
        m &= self.rng.random(len(acc)) < 0.5
        out[m] = self.dup_idx[j[m]]
        return out

    def calibrate_repeat(self) -> None:
        """Nudge 客户服务部's 2025-Q3/Q4 repeat-purchase rate onto its target."""
        rng = self.rng
        self.repeat_native: dict[str, float] = {}
        for q, target in REPEAT_TARGET.items():
            target = target + float(rng.uniform(-0.004, 0.004))
            lo, hi = QUARTER_STARTS[q], QUARTER_STARTS[q + 1]
            inq = (self.r_time >= lo) & (self.r_time < hi) & (self.a_dept[self.r_acc] == 1)
            cnt = np.bincount(self.r_acc[inq], minlength=len(self.a_kind))
            n1, n2 = int((cnt >= 1).sum()), int((cnt >= 2).sum())
            self.repeat_native[f"{q}"] = n2 / max(n1, 1)
            need = int(round(target * n1)) - n2
            if need > 0:
                ones = np.flatnonzero(cnt == 1)
                pick = np.sort(rng.choice(ones, min(need, len(ones)), replace=False))
                start = np.maximum(lo, self.a_created[pick])
                end = np.minimum(hi, EXPORT_END)
                when = _snap(rng, start + ((end - start) * rng.random(len(pick))).astype(np.int64))
                when = np.clip(when, start, end - 1)
                self.r_acc = np.concatenate([self.r_acc, pick])
                self.r_time = np.concatenate([self.r_time, when])
                self.r_opp = np.concatenate([self.r_opp, np.full(len(pick), -1)])
                self.r_amount = np.concatenate([self.r_amount, self.repeat_amount(self.a_orig[pick])])
            elif need < 0:
                twos = cnt == 2
                cand = np.flatnonzero(inq & (self.r_opp < 0) & twos[self.r_acc])
                # one removable order per customer
                _, first = np.unique(self.r_acc[cand], return_index=True)
                cand = cand[first]
                drop = rng.choice(cand, min(-need, len(cand)), replace=False)
                keep = np.ones(len(self.r_acc), bool)
                keep[drop] = False
                self.r_acc, self.r_time = self.r_acc[keep], self.r_time[keep]
                self.r_opp, self.r_amount = self.r_opp[keep], self.r_amount[keep]

    # -- tickets, visits, activities ---------------------------------------

    def windows(self, acc: np.ndarray, tail_days: int) -> tuple[np.ndarray, np.ndarray]:
        """Return each buyer's [from, to) window of activity inside the timeline."""
        lo = np.maximum(self.a_created[acc], START)
        churn = self.churn[acc]
        hi = np.where(
            churn < EXPORT_END, np.minimum(churn.astype(np.float64) + tail_days * DAY, EXPORT_END), EXPORT_END
        )
        hi = hi.astype(np.int64)
        return lo, np.maximum(hi, lo)

    def poisson_times(
        self, acc: np.ndarray, rate: np.ndarray, lo: np.ndarray, hi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Poisson events per account at ``rate`` per month within [lo, hi)."""
        cnt = self.rng.poisson(rate * (hi - lo) / MONTH)
        who = np.repeat(np.arange(len(acc)), cnt)
        t = lo[who] + (self.rng.random(len(who)) * (hi - lo)[who]).astype(np.int64)
        return who, t

    def tickets(self) -> None:
        """Requests and complaints; unhappy customers complain more (and churn more)."""
        rng = self.rng
        acc = self.b_index
        lo, hi = self.windows(acc, 30)
        rate = np.full(len(acc), 0.10) * np.exp(rng.normal(0, 0.3, len(acc)))
        who_r, t_r = self.poisson_times(acc, rate, lo, hi)
        crate = 0.033 * np.exp(0.7 * self.unhappy[acc] - 0.245)
        who_c, t_c = self.poisson_times(acc, crate, lo, hi)
        who = np.concatenate([who_r, who_c])
        typ = np.concatenate([np.zeros(len(who_r), np.int64), np.ones(len(who_c), np.int64)])
        t = np.concatenate([t_r, t_c])
        t = np.minimum(_snap(rng, t), EXPORT_END)
        n = len(t)
        med = np.where(typ == 1, 30.0, 8.0)
        res_h = med * np.exp(rng.normal(0, 0.9, n))
        resolved = t + (res_h * HOUR).astype(np.int64)
        unresolved = (rng.random(n) < 0.02) | (resolved > EXPORT_END)
        resolved = np.where(unresolved, NAT, resolved)
        lr = np.log(res_h / med)
        surveyed = (rng.random(n) < 0.6) & ~unresolved
        csat = np.clip(np.round(np.where(typ == 1, 3.0, 4.3) - 0.3 * lr + rng.normal(0, 0.8, n)), 1, 5)
        csat = np.where(surveyed, csat, -1).astype(np.int64)
        nps_s = (rng.random(n) < 0.4) & ~unresolved
        nps = np.clip(np.round(np.where(typ == 1, 5.5, 8.3) - 0.6 * lr + rng.normal(0, 1.7, n)), 0, 10)
        nps = np.where(nps_s, nps, -1).astype(np.int64)
        note_start = np.where(typ == 1, len(TICKET_NOTES[0]), 0)
        note_n = np.where(typ == 1, len(TICKET_NOTES[1]), len(TICKET_NOTES[0]))
        note = note_start + (rng.random(n) * note_n).astype(np.int64)
        a = self.reassign_to_duplicates(acc[who], t, np.ones(n, bool))
        order = np.argsort(t, kind="stable")
        self.k_acc, self.k_time, self.k_type = a[order], t[order], typ[order]
        self.k_resolved, self.k_csat, self.k_nps, self.k_note = resolved[order], csat[order], nps[order], note[order]

    def visits(self) -> None:
        """Web/app/store visits; they fade out over the months before churn."""
        rng = self.rng
        acc = self.b_index
        lo, hi = self.windows(acc, 0)
        rate = rng.gamma(2.0, 1.4 / 2.0, len(acc))
        who, t = self.poisson_times(acc, rate, lo, hi)
        churn = self.churn[acc][who]
        fade = np.clip((churn.astype(np.float64) - t) / (120 * DAY), 0.0, 1.0)
        keep = rng.random(len(t)) < fade
        who, t = who[keep], t[keep]
        hour = np.clip(rng.normal(14.0, 4.5, len(t)), 0, 23.99)
        t = np.minimum(t // DAY * DAY + (hour * HOUR).astype(np.int64), EXPORT_END)
        ch = rng.choice(len(VISIT_CHANNELS), len(t), p=VISIT_CHANNEL_WEIGHTS)
        a = self.reassign_to_duplicates(acc[who], t, np.ones(len(t), bool))
        order = np.argsort(t, kind="stable")
        self.v_acc, self.v_time, self.v_channel = a[order], t[order], ch[order]

    def activities(self) -> None:
        """Follow-up tasks for leads and customers, completion and punctuality."""
        rng = self.rng
        n = self.n_leads
        has_fc = self.l_first_contact != NAT
        opp = self.l_opp
        fs = np.where(opp >= 0, self.o_stage[np.maximum(opp, 0)], -1)
        n_task = np.where(
            opp >= 0,
            np.select([fs == 0, fs == 1, fs == 2, fs == 3], [3, 3, 4, 5], 3) + rng.integers(0, 3, n),
            np.where(has_fc, 2 + (rng.random(n) < 0.15), 2),
        )
        n_task = np.minimum(n_task, 8)
        lead_acc = np.where(opp >= 0, self.o_acc[np.maximum(opp, 0)], self.l_existing)

        # the first task: contact the lead within 24 h
        due0 = self.l_created + DAY
        done0 = self.l_first_contact
        typ0 = np.where(rng.random(n) < 0.7, 0, 3)

        # later tasks, spread over the lead's life
        others = n_task - 1
        lead = np.repeat(np.arange(n), others)
        closed = np.where(opp >= 0, self.o_closed[np.maximum(opp, 0)], NAT)
        fc = self.l_first_contact
        life_from = np.where(has_fc, fc, self.l_created + DAY + 12 * HOUR)
        life_to = np.where(
            opp >= 0,
            np.where(closed != NAT, closed, EXPORT_END),
            np.where(has_fc, fc + (rng.uniform(5, 25, n) * DAY).astype(np.int64), self.l_created + 7 * DAY),
        )
        life_to = np.maximum(life_to, life_from + HOUR)
        span = (life_to - life_from)[lead]
        due = _snap(rng, life_from[lead] + (rng.random(len(lead)) * span).astype(np.int64))
        due = np.maximum(due, life_from[lead])
        typ = rng.choice(len(ACTIVITY_TYPES), len(lead), p=ACTIVITY_TYPE_WEIGHTS)
        can_do = has_fc[lead]
        l_dept = self.l_dept[lead]
        done = self.complete(due, l_dept, can_do, self.l_created[lead])

        # periodic customer tasks and the care programme
        acc = self.b_index
        lo, hi = self.windows(acc, 45)
        who, tc = self.poisson_times(acc, np.full(len(acc), 0.2), lo, hi)
        ctyp = rng.choice(len(ACTIVITY_TYPES), len(who), p=CUSTOMER_ACTIVITY_WEIGHTS)
        cs = self.a_dept[acc] == 1
        clo = np.maximum(lo, CARE_PROGRAM)
        chi = np.maximum(hi, clo)
        who2, tc2 = self.poisson_times(acc, np.where(cs, 0.45, 0.0), clo, chi)

        # the heavy follow-up customer
        eligible = np.flatnonzero(
            (self.a_kind[acc] == 0) & (self.churn[acc] > EXPORT_END) & ~np.isin(acc, self.dup["orig"])
        )
        big = eligible[np.argsort(-self.a_size[acc[eligible]], kind="stable")[: max(1, len(eligible) // 20)]]
        heavy_b = int(big[rng.integers(0, len(big))])
        heavy = int(acc[heavy_b])
        target = int(rng.integers(130, 161))
        have = (
            int((who == heavy_b).sum())
            + int((who2 == heavy_b).sum())
            + int((lead_acc == heavy).sum() + (lead_acc[lead] == heavy).sum())
        )
        extra = max(0, target - have)
        te = START + (rng.random(extra) * (EXPORT_END - START)).astype(np.int64)
        etyp = rng.choice(len(ACTIVITY_TYPES), extra, p=CUSTOMER_ACTIVITY_WEIGHTS)
        self.heavy = heavy

        c_who = np.concatenate([who, who2, np.full(extra, heavy_b)])
        c_due = _snap(rng, np.concatenate([tc, tc2, te]))
        c_typ = np.concatenate([ctyp, np.zeros(len(who2), np.int64), etyp])
        c_care = np.concatenate([np.zeros(len(who), bool), np.ones(len(who2), bool), np.zeros(extra, bool)])
        c_acc = acc[c_who]
        c_done = self.complete(c_due, self.a_dept[c_acc], np.ones(len(c_due), bool), self.a_created[c_acc])

        # notes
        note_vocab = [x for notes in ACTIVITY_NOTES for x in notes] + [NOTE_FIRST_CONTACT, NOTE_CARE]
        starts = np.cumsum([0] + [len(x) for x in ACTIVITY_NOTES])[:-1]
        counts = np.array([len(x) for x in ACTIVITY_NOTES])

        def notes(t: np.ndarray) -> np.ndarray:
            return starts[t] + (rng.random(len(t)) * counts[t]).astype(np.int64)

        first_note, care_note = len(note_vocab) - 2, len(note_vocab) - 1
        self.act_note_vocab = note_vocab

        idx_all = np.arange(n)
        a_lead = np.concatenate([idx_all, lead, np.full(len(c_due), -1)])
        a_acc = np.concatenate([lead_acc, lead_acc[lead], c_acc])
        a_dept = np.concatenate([self.l_dept, l_dept, self.a_dept[c_acc]])
        a_rep = np.concatenate([self.l_rep, self.l_rep[lead], self.a_rep[c_acc]])
        a_type = np.concatenate([typ0, typ, c_typ])
        a_due = np.concatenate([due0, due, c_due])
        a_done = np.concatenate([done0, done, c_done])
        a_note = np.concatenate([np.full(n, first_note), notes(typ), np.where(c_care, care_note, notes(c_typ))])
        keep = a_due <= EXPORT_END
        order = np.flatnonzero(keep)
        order = order[np.argsort(a_due[order], kind="stable")]
        self.ac_lead, self.ac_acc, self.ac_dept, self.ac_rep = a_lead[order], a_acc[order], a_dept[order], a_rep[order]
        self.ac_type, self.ac_due, self.ac_done, self.ac_note = (
            a_type[order],
            a_due[order],
            a_done[order],
            a_note[order],
        )
        m = len(order)
        u = rng.random(m)
        self.ac_fmt = np.where(u < 0.10, 1, np.where(u < 0.15, 2, 0))  # 1 '2025/3/4 10:05', 2 '2025年3月4日 10:05'
        # minute resolution everywhere in this file, so every format holds the same value
        self.ac_due = self.ac_due // 60 * 60
        self.ac_done = np.where(self.ac_done == NAT, NAT, self.ac_done // 60 * 60)

    def complete(self, due: np.ndarray, dept: np.ndarray, can: np.ndarray, not_before: np.ndarray) -> np.ndarray:
        """Completion time per task (NAT = not done); reminders make 销售一部 punctual."""
        rng = self.rng
        n = len(due)
        done = can & (rng.random(n) < 0.86)
        p_on_time = np.where((dept == 0) & (due >= INTERVENTION), ON_TIME["sales_after"], ON_TIME["before"])
        on_time = rng.random(n) < p_on_time
        early = due - (rng.exponential(5.0, n) * HOUR).astype(np.int64)
        early = np.minimum(np.maximum(early, not_before + 60), due)
        late = due + (rng.exponential(28.0, n) * HOUR).astype(np.int64) + 60
        t = np.where(on_time, early, late)
        return np.where(done & (t <= EXPORT_END), t, NAT)

    # -- receipts, campaigns -------------------------------------------------

    def receipts(self) -> None:
        """One receipt per won deal, with a few planted mismatches and gaps."""
        rng = self.rng
        won = np.flatnonzero(self.o_status == 1)
        closed = self.o_closed[won]
        lag = (rng.uniform(3, 42, len(won)) * DAY).astype(np.int64)
        late = closed + lag > EXPORT_END
        room = np.maximum(EXPORT_END - closed, 0)
        received = np.where(late, closed + (room * rng.uniform(0.3, 1.0, len(won))).astype(np.int64), closed + lag)
        amount = self.o_amount[won].copy()
        n_missing = max(1, int(round(3 * self.scale)))
        old = np.flatnonzero(closed < EXPORT_END - 60 * DAY)
        missing = np.sort(rng.choice(old, n_missing, replace=False))
        keep = np.ones(len(won), bool)
        keep[missing] = False
        n_mis = max(3, int(round(10 * self.scale)))
        cands = np.flatnonzero(keep & (amount >= 5000))
        mis = np.sort(rng.choice(cands, n_mis, replace=False))
        rel = rng.uniform(0.006, 0.019, n_mis) * np.where(rng.random(n_mis) < 0.5, -1, 1)
        amount[mis] = np.round(amount[mis] * (1 + rel), 2)
        self.missing_receipt_opps = np.sort(won[missing])
        self.mismatch_opps = won[mis]
        sel = np.flatnonzero(keep)
        order = sel[np.argsort(received[sel], kind="stable")]
        self.rc_opp, self.rc_time, self.rc_amount = won[order], received[order], amount[order]

    def campaigns(self) -> None:
        """Campaign spend from last-touch acquisitions; 2-3 campaigns overspend."""
        rng = self.rng
        conv = self.l_status == 1
        acquired = np.bincount(self.l_campaign[conv], minlength=len(CAMPAIGNS))
        bench = np.array([c[4] for c in CAMPAIGNS], dtype=np.float64)
        ratio = rng.uniform(0.6, 1.1, len(CAMPAIGNS))
        ranked = np.argsort(-acquired, kind="stable")[: len(CAMPAIGNS) // 2]
        over = np.sort(rng.choice(ranked, int(rng.integers(2, 4)), replace=False))
        ratio[over] = rng.uniform(1.45, 1.8, len(over))
        spend = np.round(
            np.where(acquired > 0, acquired * bench * ratio, bench * rng.uniform(0.3, 0.8, len(bench))), -2
        )
        self.c_spend, self.c_bench, self.c_acquired = spend, bench, acquired

    # -- run and write -------------------------------------------------------

    def build(self) -> None:
        """Build every table in memory."""
        self.reps()
        self.leads()
        self.accounts()
        self.orders()
        self.duplicates_and_gaps()
        # events of duplicated customers partly move to the duplicate record
        self.r_acc = self.reassign_to_duplicates(self.r_acc, self.r_time, self.r_opp < 0)
        self.calibrate_repeat()
        order = _sort_order(self.r_time, self.r_acc)
        self.r_acc, self.r_time, self.r_opp, self.r_amount = (
            self.r_acc[order],
            self.r_time[order],
            self.r_opp[order],
            self.r_amount[order],
        )
        self.tickets()
        self.visits()
        self.activities()
        self.receipts()
        self.campaigns()

    def cid(self, acc: np.ndarray) -> np.ndarray:
        """Map account indices to customer-id numbers (-1 stays missing)."""
        return np.where(acc >= 0, self.a_rank[np.maximum(acc, 0)], -1)

    def write(self, out: Path, progress: Progress | None) -> dict[str, int]:
        """Write all files; return rows per table."""
        out.mkdir(parents=True, exist_ok=True)
        rows: dict[str, int] = {}
        n_acc = len(self.a_kind)
        n_opp = len(self.o_lead)
        rep_vocab = self.rep_name

        def emit(table: str, n: int, cols: dict[str, ColumnFn], bom: bool = False) -> None:
            assert list(cols) == list(TABLES[table].columns), table
            path = out / DEFAULT_FILES[table]
            _write_csv(path, n, cols, bom=bom)
            rows[table] = n
            if progress:
                progress(f"wrote {path.name} ({n:,} rows)")

        # customers
        order = self.a_order
        person = self.a_person[order]
        ppl = self.people
        name = ppl.name(person)
        company = ppl.company(person)
        phone = ppl.phone(person)
        email = ppl.email(person)
        kind = self.a_kind[order]
        is_dup = kind == 3
        if is_dup.any():
            pos = np.full(n_acc, -1)
            pos[self.dup_idx] = np.arange(len(self.dup_idx))
            j = pos[order[is_dup]]
            variant = self.dup["variant"][j]
            pfmt = self.dup["phone_fmt"][j]
            ecase = self.dup["email_case"][j]
            dp = person[is_dup]
            d_name = pc.if_else(
                pa.array(variant == 0),
                ppl.name(dp, " "),
                pc.if_else(pa.array(variant == 1), ppl.name(dp, "\u3000"), ppl.name(dp)),
            )
            d_company = pc.if_else(pa.array(variant == 2), ppl.company(dp, ""), ppl.company(dp))
            digits = ppl.phone(dp)
            dashed = pc.binary_join_element_wise(
                pc.utf8_slice_codeunits(digits, 0, 3),
                pc.utf8_slice_codeunits(digits, 3, 7),
                pc.utf8_slice_codeunits(digits, 7, 11),
                "-",
            )
            plus = pc.binary_join_element_wise("+86", digits, " ")
            d_phone = pc.if_else(pa.array(pfmt == 1), dashed, pc.if_else(pa.array(pfmt == 2), plus, digits))
            e = ppl.email(dp)
            d_email = pc.if_else(pa.array(ecase == 0), pc.utf8_upper(e), pc.utf8_title(e))
            where = pa.array(is_dup)
            name = pc.replace_with_mask(name, where, d_name)
            company = pc.replace_with_mask(company, where, d_company)
            phone = pc.replace_with_mask(phone, where, d_phone)
            email = pc.replace_with_mask(email, where, d_email)
        phone = _masked(phone, self.a_no_phone[order])
        email = _masked(email, self.a_no_email[order])
        industry = ppl.industry[person]
        city = ppl.city[person]
        emit(
            "customers",
            n_acc,
            {
                "customer_id": _col_ids("C", np.arange(n_acc), 6, n_acc),
                "name": _col_text(name),
                "company": _col_text(company),
                "phone": _col_text(phone),
                "email": _col_text(email),
                "city": _col_cat(CITIES, city),
                "industry": _col_cat([i for i, _ in INDUSTRIES], industry),
                "department": _col_cat(DEPARTMENTS, self.a_dept[order]),
                "owner_rep": _col_cat(rep_vocab, self.a_rep[order]),
                "channel": _col_cat(CHANNELS, self.a_channel[order]),
                "created_at": _col_datetime(self.a_created[order]),
            },
            bom=True,
        )

        # leads
        lp = self.l_person
        emit(
            "leads",
            self.n_leads,
            {
                "lead_id": _col_ids("L", np.arange(self.n_leads), 7, self.n_leads),
                "created_at": _col_datetime(self.l_created),
                "first_contact_at": _col_datetime(self.l_first_contact),
                "department": _col_cat(DEPARTMENTS, self.l_dept),
                "owner_rep": _col_cat(rep_vocab, self.l_rep),
                "channel": _col_cat(CHANNELS, self.l_channel),
                "campaign_id": _col_ids("CMP", self.l_campaign, 3, len(CAMPAIGNS)),
                "contact_name": _col_text(ppl.name(lp)),
                "phone": _col_text(ppl.phone(lp)),
                "email": _col_text(_masked(ppl.email(lp), self.l_email_missing)),
                "status": _col_cat(LEAD_STATUSES, self.l_status),
                "customer_id": _col_ids("C", self.cid(self.l_customer), 6, n_acc),
            },
        )

        # opportunities
        emit(
            "opportunities",
            n_opp,
            {
                "opportunity_id": _col_ids("OPP", np.arange(n_opp), 6, n_opp),
                "lead_id": _col_ids("L", self.o_lead, 7, self.n_leads),
                "customer_id": _col_ids("C", self.cid(self.o_acc), 6, n_acc),
                "department": _col_cat(DEPARTMENTS, self.o_dept),
                "owner_rep": _col_cat(rep_vocab, self.o_rep),
                "created_at": _col_datetime(self.o_created),
                "stage": _col_cat(OPP_STAGES, self.o_stage),
                "status": _col_cat(OPP_STATUSES, self.o_status),
                "amount": _col_money(self.o_amount),
                "closed_at": _col_datetime(self.o_closed),
                "loss_reason": _col_cat(LOSS_REASONS, self.o_reason),
                "note": _col_cat(list(OPP_NOTES) + list(TRICKY_NOTES), self.o_note),
            },
        )

        # stage history: one row per stage entered
        ent = self.o_entered
        sh_opp, sh_stage, sh_in, sh_out = [], [], [], []
        for k in range(3):
            m = ent[:, k] != NAT
            nxt = ent[:, k + 1]
            exit_t = np.where(nxt != NAT, nxt, np.where(self.o_status == 2, self.o_lost_at, NAT))
            sh_opp.append(np.flatnonzero(m))
            sh_stage.append(np.full(int(m.sum()), k))
            sh_in.append(ent[m, k])
            sh_out.append(exit_t[m])
        for stage, m, t in ((3, ent[:, 3] != NAT, ent[:, 3]), (4, self.o_status == 2, self.o_lost_at)):
            sh_opp.append(np.flatnonzero(m))
            sh_stage.append(np.full(int(m.sum()), stage))
            sh_in.append(t[m])
            sh_out.append(np.full(int(m.sum()), NAT))
        s_opp = np.concatenate(sh_opp)
        s_stage = np.concatenate(sh_stage)
        order = _sort_order(s_opp, s_stage)
        s_opp, s_stage = s_opp[order], s_stage[order]
        s_in, s_out = np.concatenate(sh_in)[order], np.concatenate(sh_out)[order]
        emit(
            "stage_history",
            len(s_opp),
            {
                "opportunity_id": _col_ids("OPP", s_opp, 6, n_opp),
                "stage": _col_cat(OPP_STAGES, s_stage),
                "entered_at": _col_datetime(s_in),
                "exited_at": _col_datetime(s_out),
            },
        )

        # activities with mixed date formats
        n_act = len(self.ac_due)
        fmt = self.ac_fmt

        def mixed(sec: np.ndarray) -> ColumnFn:
            def build(lo: int, hi: int) -> pa.Array:
                s, f = sec[lo:hi], fmt[lo:hi]
                arr = _fmt_datetime(s)
                for code, style in ((1, "slash"), (2, "chinese")):
                    m = (f == code) & (s != NAT)
                    if m.any():
                        arr = pc.replace_with_mask(arr, pa.array(m), _fmt_local(s[m], style))
                return arr

            return build

        emit(
            "activities",
            n_act,
            {
                "activity_id": _col_ids("A", np.arange(n_act), 7, n_act),
                "customer_id": _col_ids("C", self.cid(self.ac_acc), 6, n_acc),
                "lead_id": _col_ids("L", self.ac_lead, 7, self.n_leads),
                "department": _col_cat(DEPARTMENTS, self.ac_dept),
                "owner_rep": _col_cat(rep_vocab, self.ac_rep),
                "type": _col_cat(ACTIVITY_TYPES, self.ac_type),
                "due_at": mixed(self.ac_due),
                "completed_at": mixed(self.ac_done),
                "note": _col_cat(self.act_note_vocab, self.ac_note),
            },
        )

        # orders
        n_ord = len(self.r_acc)
        emit(
            "orders",
            n_ord,
            {
                "order_id": _col_ids("SO", np.arange(n_ord), 7, n_ord),
                "customer_id": _col_ids("C", self.cid(self.r_acc), 6, n_acc),
                "opportunity_id": _col_ids("OPP", self.r_opp, 6, n_opp),
                "department": _col_cat(DEPARTMENTS, self.a_dept[self.r_acc]),
                "order_date": _col_datetime(self.r_time),
                "amount": _col_money(self.r_amount),
            },
        )

        # tickets
        n_t = len(self.k_acc)
        emit(
            "tickets",
            n_t,
            {
                "ticket_id": _col_ids("T", np.arange(n_t), 6, n_t),
                "customer_id": _col_ids("C", self.cid(self.k_acc), 6, n_acc),
                "department": _col_cat(DEPARTMENTS, self.a_dept[self.k_acc]),
                "type": _col_cat(TICKET_TYPES, self.k_type),
                "created_at": _col_datetime(self.k_time),
                "resolved_at": _col_datetime(self.k_resolved),
                "csat": _col_int(self.k_csat),
                "nps": _col_int(self.k_nps),
                "note": _col_cat(list(TICKET_NOTES[0]) + list(TICKET_NOTES[1]), self.k_note),
            },
        )

        # campaigns (xlsx)
        header = list(TABLES["campaigns"].columns)
        xrows = [
            [f"CMP{i + 1:03d}", c[1], c[0], c[2], c[3], float(self.c_spend[i]), float(c[4])]
            for i, c in enumerate(CAMPAIGNS)
        ]
        _write_xlsx(out / DEFAULT_FILES["campaigns"], header, xrows)
        rows["campaigns"] = len(xrows)
        if progress:
            progress(f"wrote {DEFAULT_FILES['campaigns']} ({len(xrows)} rows)")

        # touches
        n_tc = len(self.t_lead)
        emit(
            "touches",
            n_tc,
            {
                "touch_id": _col_ids("TC", np.arange(n_tc), 7, n_tc),
                "lead_id": _col_ids("L", self.t_lead, 7, self.n_leads),
                "campaign_id": _col_ids("CMP", self.t_camp, 3, len(CAMPAIGNS)),
                "channel": _col_cat(CHANNELS, self.camp_ch[self.t_camp]),
                "touched_at": _col_datetime(self.t_time),
            },
        )

        # visits
        n_v = len(self.v_acc)
        emit(
            "visits",
            n_v,
            {
                "visit_id": _col_ids("V", np.arange(n_v), 7, n_v),
                "customer_id": _col_ids("C", self.cid(self.v_acc), 6, n_acc),
                "visited_at": _col_datetime(self.v_time),
                "channel": _col_cat(VISIT_CHANNELS, self.v_channel),
            },
        )

        # receipts
        n_r = len(self.rc_opp)
        emit(
            "receipts",
            n_r,
            {
                "receipt_id": _col_ids("RC", np.arange(n_r), 6, n_r),
                "opportunity_id": _col_ids("OPP", self.rc_opp, 6, n_opp),
                "customer_id": _col_ids("C", self.cid(self.o_acc[self.rc_opp]), 6, n_acc),
                "received_at": _col_datetime(self.rc_time),
                "amount": _col_money(self.rc_amount),
            },
        )
        return rows

    # -- answer key ----------------------------------------------------------

    def planted_facts(self, rows: dict[str, int]) -> dict[str, Any]:
        """Return the answer key: planted faults, effects and rows per table."""
        n_acc, n_opp = len(self.a_kind), len(self.o_lead)
        w_c, w_o, w_r = _width(n_acc, 6), _width(n_opp, 6), _width(len(self.rc_opp), 6)

        def cust(i: int) -> str:
            return f"C{int(self.a_rank[i]) + 1:0{w_c}d}"

        def opp(i: int) -> str:
            return f"OPP{int(i) + 1:0{w_o}d}"

        variants = ("extra_space", "full_width_space", "company_without_suffix")
        phone_formats = ("digits", "dashed", "plus86")
        duplicates = [
            {
                "original": cust(o),
                "duplicate": cust(d),
                "name_variant": variants[int(v)],
                "phone_format": phone_formats[int(f)],
            }
            for o, d, v, f in zip(self.dup["orig"], self.dup_idx, self.dup["variant"], self.dup["phone_fmt"])
        ]
        rc_pos = {int(o): i for i, o in enumerate(self.rc_opp)}
        mismatches = []
        for o in self.mismatch_opps:
            i = rc_pos[int(o)]
            mismatches.append(
                {
                    "receipt_id": f"RC{i + 1:0{w_r}d}",
                    "opportunity_id": opp(o),
                    "crm_amount": round(float(self.o_amount[o]), 2),
                    "receipt_amount": round(float(self.rc_amount[i]), 2),
                }
            )
        mismatches.sort(key=lambda m: m["receipt_id"])
        cpa = self.c_spend / np.maximum(self.c_acquired, 1)
        over = [
            {
                "campaign_id": f"CMP{i + 1:03d}",
                "spend": float(self.c_spend[i]),
                "acquired_customers": int(self.c_acquired[i]),
                "cpa": round(float(cpa[i]), 2),
                "cpa_benchmark": float(self.c_bench[i]),
            }
            for i in range(len(CAMPAIGNS))
            if self.c_acquired[i] > 0 and cpa[i] > 1.3 * self.c_bench[i]
        ]
        conversion = {}
        for q, label in ((Q3_2025, "2025Q3"), (Q4_2025, "2025Q4")):
            for d, dept in enumerate(DEPARTMENTS):
                m = (self.l_quarter == q) & (self.l_dept == d)
                conversion[f"{dept} {label}"] = round(float((self.l_status[m] == 1).mean()), 4)
        repeat = {}
        for q, label in ((Q3_2025, "2025Q3"), (Q4_2025, "2025Q4")):
            lo, hi = QUARTER_STARTS[q], QUARTER_STARTS[q + 1]
            for d, dept in enumerate(DEPARTMENTS):
                inq = (self.r_time >= lo) & (self.r_time < hi) & (self.a_dept[self.r_acc] == d)
                cnt = np.bincount(self.r_acc[inq], minlength=n_acc)
                repeat[f"{dept} {label}"] = round(float((cnt >= 2).sum() / max((cnt >= 1).sum(), 1)), 4)
        heavy_n = int((self.ac_acc == self.heavy).sum())
        return {
            "seed": self.seed,
            "scale": self.scale,
            "export_date": "2026-03-31",
            "intervention_date": "2025-10-01",
            "intervention_department": DEPARTMENTS[0],
            "control_department": DEPARTMENTS[1],
            "care_program_date": "2025-10-01",
            "care_program_department": DEPARTMENTS[1],
            "rows": rows,
            "duplicates": duplicates,
            "missing_phone": sorted(cust(i) for i in np.flatnonzero(self.a_no_phone)),
            "missing_email": sorted(cust(i) for i in np.flatnonzero(self.a_no_email)),
            "heavy_customer": {"customer_id": cust(self.heavy), "activities": heavy_n},
            "receipt_mismatches": mismatches,
            "won_without_receipt": [opp(o) for o in self.missing_receipt_opps],
            "tricky_notes": [opp(o) for o in self.tricky],
            "over_benchmark_campaigns": over,
            "campaigns_without_acquisitions": [f"CMP{i + 1:03d}" for i in np.flatnonzero(self.c_acquired == 0)],
            "campaign_attribution": "last touch: converted leads per leads.campaign_id",
            "mixed_date_formats": {
                "file": DEFAULT_FILES["activities"],
                "columns": ["due_at", "completed_at"],
                "slash_rows": int((self.ac_fmt == 1).sum()),
                "chinese_rows": int((self.ac_fmt == 2).sum()),
            },
            "lead_conversion": conversion,
            "repeat_purchase_rate": repeat,
        }


def generate(
    out_dir: str | Path,
    scale: float = 1.0,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
) -> dict:
    """Write the demo CRM exports to out_dir and return a summary (rows per table, planted facts)."""
    demo = _Demo(scale, seed)
    demo.build()
    out = Path(out_dir)
    rows = demo.write(out, progress)
    facts = demo.planted_facts(rows)
    (out / "planted.json").write_text(json.dumps(facts, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if progress:
        progress("wrote planted.json")
    return facts


def to_sqlite(folder: str | Path, db_path: str | Path) -> dict[str, int]:
    """Load the exports in ``folder`` into a SQLite file, one text table per canonical table; return rows per table.

    Each export is read through :func:`crmnb.intake.read.read_export`, so the database holds
    exactly the text the files hold; a case reads it with ``data.sql_url:
    sqlite:///<db_path>``. An existing file at ``db_path`` is replaced.
    """
    import sqlite3

    from crmnb.intake.read import read_export

    src, db = Path(folder), Path(db_path)
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(db.name + ".tmp")
    tmp.unlink(missing_ok=True)
    rows: dict[str, int] = {}
    with sqlite3.connect(tmp) as conn:
        for table, file in DEFAULT_FILES.items():
            df = read_export(src / file, table)
            df = df.astype(object).where(df.notna(), None)
            df.to_sql(table, conn, index=False, dtype=dict.fromkeys(df.columns, "TEXT"))
            rows[table] = len(df)
    conn.close()
    tmp.replace(db)
    return rows
