"""Sales phrasing for generated segments: several templates per slot, picked by the seed.

Rules every template keeps (tests check them): no number that is not a placeholder filled
from the product data, no claim beyond the data, and none of the absolute/superlative words
China's advertising law forbids (BANNED_WORDS). Placeholders: {name} {point} {items}
{price} {live} {saving} {label} {final} {stock} {limit} {link}.
"""
from __future__ import annotations

BANNED_WORDS = ("最", "第一", "国家级", "全网最低", "100%", "顶级", "唯一", "独家", "首选")

COUNTDOWN_TEXT = "3、2、1，上链接！"

HOOKS = (
    "家人们，接下来这款{name}，一定听我讲完！",
    "来来来，下一个宝贝：{name}！",
    "直播间的朋友们看过来，这款是{name}！",
    "姐妹们兄弟们，今天给大家带来{name}！",
    "刚进来的宝宝注意了，{name}开讲啦！",
)

# Category hooks and pain points (the pain point leads into the first selling point, which
# answers it). builder.CATEGORIES says which category words pick which; others use HOOKS and
# POINT_OPENERS.
HOOKS_DIGITAL = (
    "数码控看过来，{name}来了！",
    "打工人通勤必备，{name}！",
    "科技党注意，这款{name}一定听我讲完！",
)
PAINS_DIGITAL = ("通勤路上吵、电量不够用？看这里，", "买电子产品怕踩坑？先看重点，", "数码产品看实在的，")
HOOKS_BEAUTY = (
    "姐妹们，护肤时间到，{name}！",
    "爱美的姐妹看过来，{name}来了！",
    "换季护肤，给大家带来{name}！",
)
PAINS_BEAUTY = ("换季皮肤干、上妆不服帖？先看重点，", "选护肤品，肤感很重要，", "怕护肤品用着黏腻？先听我说，")
HOOKS_FOOD = (
    "吃货们注意了，{name}来了！",
    "嘴馋的宝宝看过来，{name}！",
    "囤货时间到，这款{name}听我说！",
)
PAINS_FOOD = ("嘴馋又怕踩雷？先说重点，", "下午饿了吃什么？看这里，", "给家里囤吃的，口感很关键，")
HOOKS_APPAREL = (
    "穿搭时间到，{name}来了！",
    "换季穿搭看这款{name}！",
    "衣柜上新，给大家带来{name}！",
)
PAINS_APPAREL = ("衣柜满了还总觉得没衣服穿？看这里，", "买衣服就怕上身不合适，先说重点，", "换季不知道穿什么？先听我说，")
HOOKS_BABY = (
    "宝妈宝爸们看过来，{name}来了！",
    "带娃的家人们注意，{name}！",
    "给宝宝挑好物，今天带来{name}！",
)
PAINS_BABY = ("宝宝用的东西，宝妈们都格外仔细，", "宝妈带娃辛苦，先说重点，", "挑母婴用品，细节要看清楚，")

DISCLOSURE = "大家好，我是本直播间的AI数字人主播，有问题随时在评论区问我！"

# The first selling point gets an opener, the rest get distinct follow-ups.
POINT_OPENERS = ("先说大家关心的，", "我先讲重点，", "先给大家说说，", "开门见山，")
POINT_FOLLOWUPS = ("还有，", "再来，", "而且，", "另外，", "不光这样，", "重点来了，", "大家注意，", "再讲一个，")
POINT_ENDINGS = ("！", "。")

SPEC_LEADS = ("口说无凭，看参数：", "看一下参数：", "规格给大家念一下：", "实打实的参数：")
SPEC_MORE_LEADS = ("还有，", "再看，", "另外，")

GIFTS = (
    "今天下单还送{items}！",
    "买它还送{items}，一起带回家！",
    "拍下就有赠品：{items}！",
)

AFTER_SALE = (
    "售后给大家兜底：{items}，放心拍！",
    "{items}，售后这块大家放心！",
    "买得放心：{items}。",
)

PRICE_WITH_SAVING = (
    "原价¥{price}，今天直播间到手价¥{live}，直降{saving}元！",
    "划线价¥{price}，直播间只要¥{live}，直接省{saving}元！",
    "看好了，原价¥{price}，直播间到手¥{live}，省下{saving}元！",
)
PRICE_ONLY = (
    "今天直播间到手价¥{live}！",
    "价格给大家说清楚，直播间到手¥{live}！",
)

COUPON_ON_ONE = (
    "再领一张{label}的券，券后到手¥{final}！",
    "别忘了领券，{label}，算下来只要¥{final}！",
    "还有{label}的优惠券，用完到手¥{final}！",
)
COUPON_ON_SEVERAL = (
    "店铺还有{label}的券，凑单更划算！",
    "记得先领{label}的优惠券，多买多省！",
)

FLASH_WITH_COUPON = (
    "{link}号链接，{stock}份{label}秒杀券，每人限领{limit}张，手慢无！",
    "{label}的秒杀券只有{stock}份，每人限领{limit}张，手慢无！",
)
FLASH_PLAIN = (
    "{link}号链接，秒杀{stock}份，每人限购{limit}份，手慢无！",
    "只有{stock}份秒杀名额，每人限购{limit}份，手慢无！",
)

URGENCY = (
    "这一波现货{stock}件，拍完就没了！",
    "今天一共备了{stock}件，库存有限，大家抓紧！",
    "库存{stock}件，看中的别犹豫！",
)
SOLD_OUT = (
    "这款现货已经被抢光了，先加购物车等补货！",
    "现货暂时没有了，想要的先点关注等补货！",
)

CALLS_TO_ACTION = (
    "喜欢的宝宝直接拍{link}号链接！",
    "想要的抓紧下单，认准{link}号链接！",
    "还在犹豫的宝宝，{link}号链接冲！",
    "拍{link}号链接，拍完回来扣个已拍！",
)
SOLD_OUT_CALLS = (
    "{link}号链接先加购，补货了就能拍！",
    "{link}号链接可以先收藏起来！",
)
