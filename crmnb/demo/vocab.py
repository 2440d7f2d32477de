"""The demo company's vocabularies: names, cities, industries, channels, campaigns, notes.

Declarative tables only; the weights beside each vocabulary are the shares drawn at scale 1.
"""

from __future__ import annotations

import numpy as np

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

# --------------------------------------------------------------------------- service desk: ticket text and fields
TICKET_CHANNELS = ("phone", "e-mail", "chat", "social")
TICKET_CHANNEL_WEIGHTS = (0.35, 0.25, 0.30, 0.10)
FIRST_RESPONSE_MEDIAN_HOURS = (0.5, 6.0, 0.3, 9.0)  # by channel: social is the slow one, planted
TICKET_PRIORITIES = ("urgent", "high", "normal", "low")
PRIORITY_WEIGHTS = ((0.03, 0.15, 0.60, 0.22), (0.10, 0.30, 0.45, 0.15))  # request, complaint
PRODUCTS = ("标准版", "专业版", "智能版")
PRODUCT_WEIGHTS = (0.25, 0.25, 0.50)
CHANGED_PRODUCT = 2
"""The product whose new release (:data:`crmnb.demo.service.PRODUCT_CHANGE`) brings complaints about faults."""
COMPLAINT_THEMES = (
    ("物流配送", ("快递一直没到", "发货太慢了", "物流信息一周没有更新", "配送延迟了三天")),
    ("产品质量", ("收到的产品有破损", "质量太差，用了两天就坏了", "产品有明显瑕疵")),
    ("账单退款", ("账单金额有误", "被重复扣费", "退款迟迟没有到账", "发票金额不对")),
    ("服务态度", ("客服态度很差", "对客服态度不满意", "客服说话很不耐烦")),
    ("响应速度", ("服务响应太慢", "电话一直打不通", "等了很久没人回复")),
    ("系统故障", ("升级后APP闪退", "新版本登录不了", "系统故障影响业务", "更新后一直卡顿，无法登录")),
    ("功能不符", ("功能与宣传不符", "和销售承诺的功能不一样")),
)
"""The demo's complaint themes (the service lexicon's names) and how customers write about each."""
THEME_WEIGHTS = (0.17, 0.16, 0.17, 0.15, 0.17, 0.05, 0.13)
FAULT_THEME = 5
"""The theme that rises after the product change: 系统故障 (faults), planted."""
COMPLAINT_TAILS = ("", "，请尽快处理", "，希望给个说法", "，非常失望", "。回电13812345678")
