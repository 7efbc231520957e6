"""What a viewer's comment asks for, by keywords and patterns (no model, no network).

Intents are checked in a fixed order and the first that matches wins: the order settles
comments that touch two topics ("运费多少钱" is about shipping, not price; "券后多少钱" about
the coupon). `ai_disclosure` ("你是真人吗") is its own intent because the host must answer it
truthfully; greetings and chatter are `other`, with is_chatter() telling them apart.
"""
from __future__ import annotations

import re

INTENTS = (
    "price", "coupon", "how_to_buy", "stock", "shipping", "spec", "gift", "after_sale", "authenticity",
    "ai_disclosure", "other",
)

_PATTERNS: tuple[tuple[str, str], ...] = (
    ("ai_disclosure", r"真人|机器人|是(?i:ai)|(?i:ai)(?:主播|数字人|人|吗)|数字人|虚拟人|虚拟主播|人工智能|是人吗|是不是人|假人|录播|真的人"),
    # a comparison of prices is about the price, whatever it is compared with (比旗舰店便宜吗)
    ("price", r"比.{1,8}(?:便宜|贵|划算|实惠)"),
    ("after_sale", (r"售后|退货|退换|退款|保修|无理由|换货|坏了|质量问题|价保|只换不修|坏果|包赔|能退|可以退|能换|可以换|"
                   r"怎么退|换吗|退吗|运费险|联保|质保|(?i:refund|return)")),
    ("authenticity", (r"正品|真的假的|假货|正不正|授权|旗舰|是真的吗|真货|防伪|山寨|高仿|仿品|品牌方|官方的|原装|靠谱吗|是正的|"
                     r"保真|真伪|假的|水货|专柜|(?i:fake|genuine|authentic)")),
    ("shipping", (r"发货|快递|包邮|几天到|多久到|多久能到|物流|运费|送到|配送|送货|偏远|新疆|西藏|顺丰|什么时候到|哪天到|寄|邮费|"
                 r"能发(?!票)|几天能到|(?:今天|明天|后天|哪天|几号)能?到|能收到|收到货|多久收|几天收|(?:啥|什么)时候.{0,3}(?:收|到|发)|中通|圆通|韵达|申通|极兔|"
                 r"(?i:ems|shipping|deliver)")),
    ("coupon", r"券|优惠|满减|折扣|打折|几折|减多少|红包|再减|能减|有减|(?i:coupon|discount)"),
    ("gift", r"赠品|送什么|送啥|送的|有送|还送|礼品|赠送|附赠|小样|送不送|赠|礼物|试用装|送.{0,4}(?:吗|不)|送东西|(?i:gift)"),
    ("stock", (r"库存|有货|没货|无货|缺货|还剩|剩几|剩下|还有多少|剩多少|卖完|卖光|补货|售罄|抢光|还有吗|还有没|还能抢|还能买吗|抢完|"
              r"几件了|断货|^没了[吗？?]*$|(?i:stock|sold out)")),
    ("how_to_buy", (r"怎么买|在哪买|哪里买|怎么拍|去哪拍|链接|几号|下单|购物车|小黄车|拍哪|买哪|怎么抢|怎么购买|在哪拍|哪里拍|上车|"
                   r"(?i:link|how to buy)")),
    ("price", r"多少钱|价格|几块|什么价|价钱|贵|便宜|到手价|多钱|怎么卖|啥价|原价|多少米|划算|几钱|多少一|价位|(?i:price|how much)"),
    ("spec", (r"参数|尺寸|多大|重量|多重|续航|容量|保质期|尺码|颜色|材质|成分|多少克|净含量|蓝牙|防水|产地|规格|"
             r"能用多久|多长|几寸|码数|多高|多宽|适合|能不能用|可以用吗|配料|几袋|多少袋|型号|功率|充电|噪|哪里产|口味|味道|"
             r"几代|几段|几升|多少升|几瓦|多少瓦|毫安|能用吗|面料|含.{0,4}吗|什么码|大码|小码|穿.{0,3}码|(?i:size|spec)")),
)
_COMPILED = tuple((intent, re.compile(pattern)) for intent, pattern in _PATTERNS)

_CHATTER = re.compile(
    r"^(?:[\s\W_]|主播|你好|大家好|哈+|嗯+|好的?|来了|我来了|晚上好|早上好|下午好|中午好|晚安|拜拜|支持|加油|好看|好美|漂亮|"
    r"厉害|棒|666|6+|赞|爱了|喜欢|谢谢|感谢|打卡|签到|冲|已拍|拍了|已下单|关注了|点赞|[0-9]|[a-zA-Z]|啊|呀|哦|呢|吧|了|"
    r"你|我|的|真|很|太|啦|们|家人)*$"
)


def classify(text: str) -> str:
    """One of INTENTS; anything no pattern recognises is `other`."""
    for intent, pattern in _COMPILED:
        if pattern.search(text):
            return intent
    return "other"


def is_chatter(text: str) -> bool:
    """Greetings, cheers, 已拍 and emoji: worth a short acknowledgement at most, never a facts answer."""
    return classify(text) == "other" and bool(_CHATTER.fullmatch(text.strip()))
