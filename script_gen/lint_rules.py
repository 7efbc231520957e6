"""What China's advertising law forbids in a sales script, as a table of patterns.

Each entry is (rule, pattern, suggestion). The suggestion replaces the matched span and may
refer to the pattern's groups (re.Match.expand syntax). Benign look-alikes (第一次, 最近, 每人最多
拍2件, 最好先领券, 100%纯棉...) are kept out by lookarounds, so a host can still say them.
Earlier entries win when two matches start at the same place; docs/lint.md lists the rules.
"""
from __future__ import annotations

import re

ABSOLUTE = "absolute"  # superlatives and absolute claims (广告法 第九条(三))
MEDICAL = "medical"  # disease or efficacy claims for products that are not drugs
ENDORSEMENT = "endorsement"  # state bodies, officials or state media as endorsers
INSPECTION_EXEMPT = "inspection_exempt"  # 免检: no product is exempt from inspection
GUARANTEE = "guarantee"  # guaranteed results, no risk

RULES = (ABSOLUTE, MEDICAL, ENDORSEMENT, INSPECTION_EXEMPT, GUARANTEE)

_NUM = r"[0-9０-９一二两三四五六七八九十百几]"
# 最多/最少 + (verb) + a number is a purchase limit, not a claim: 每人最多拍2件, 最少买两盒.
_LIMIT_AFTER = rf"(?:[\s]|只|能|可以|可|限购|限|拍|买|领|下单|购买|抢|选|送|用|要)*{_NUM}"
# 最快 + a time is a delivery estimate: 最快明天到.
_TIME_AFTER = rf"(?:[\s]|{_NUM}|今天|明天|当天|次日|后天|隔天)"
# 最好 + an action is advice (best to...): 最好先领券, 最好今天就拍.
_ADVICE_AFTER = (
    r"(?:先|别|不要|今天|现在|马上|赶紧|趁|提前|早点|领|拍|记得|备|囤|一次|直接|去|备注|联系|咨询|按|关注|收藏|加购)"
)
# 第一 + one of these is an ordinal (第一次, 第一批, 第一个宝贝), not a ranking.
_ORDINAL_AFTER = (
    r"(?:次|时间|批|天|步|个|件|波|款|轮|口|眼|位|单|份|期|集|场|站|季|排|段|句|条|张|瓶|袋|盒|杯|周|年|印象|手|秒"
    r"|分钟|小时|名额|组|号|道|层|代|章|节|课|届|[0-9])"
)

TABLE: tuple[tuple[str, str, str], ...] = (
    # --- guarantees first: "100%治愈" is one finding, not two --------------------------------
    (GUARANTEE, r"(?:100\s*[%％]|百分之百|百分百)(?:有效|见效|安全|无副作用|满意|成功|治愈|保证|正品|不(?:过敏|反弹|掉色|起球))",
     "效果因人而异"),
    (GUARANTEE, r"零风险|无风险", "售后有保障"),
    (GUARANTEE, r"无效退款|保证有效|包治百病|包治|药到病除", "效果因人而异"),
    (GUARANTEE, r"无副作用|零副作用", "成分温和"),
    (GUARANTEE, r"立竿见影|一次见效|立即见效|马上见效|当天见效", "坚持使用"),
    (GUARANTEE, r"永不(反弹|掉色|褪色|变形|起球)", r"不易\1"),
    # --- absolute and superlative words -------------------------------------------------------
    (ABSOLUTE, r"全网最低价|史上最低价|全网底价", "直播间专属价"),
    (ABSOLUTE, r"(?:全网|史上|历史|全年)最低", "直播间优惠"),
    (ABSOLUTE, r"最低价", "优惠价"),
    (ABSOLUTE, r"最受欢迎", "很受欢迎"),
    (ABSOLUTE, r"最(多|少)(?!" + _LIMIT_AFTER + ")", r"很\1"),
    (ABSOLUTE, r"最快(?!" + _TIME_AFTER + ")", "很快"),
    (ABSOLUTE, r"最好(?!" + _ADVICE_AFTER + ")", "很好"),
    (ABSOLUTE, r"最(?!近|后|终|晚|初|起码|多|少|快|好)(\w)", r"很\1"),
    (ABSOLUTE, r"(?<!唯)第[一1](?!" + _ORDINAL_AFTER + ")", "热门"),
    (ABSOLUTE, r"(?i)(?<![a-z])(?:no\.?\s*1|top\s*1)(?![0-9])", "热门"),
    (ABSOLUTE, r"国家级|世界级|全球级|国际级|宇宙级", "高品质"),
    (ABSOLUTE, r"顶级|顶尖", "高端"),
    (ABSOLUTE, r"极致|完美|无与伦比", "出色"),
    (ABSOLUTE, r"独家|独一无二", "特别"),
    (ABSOLUTE, r"唯一", "难得"),
    (ABSOLUTE, r"首选", "推荐"),
    (ABSOLUTE, r"万能", "多用途"),
    (ABSOLUTE, r"史无前例", "难得"),
    (ABSOLUTE, r"(?:遥遥|全国|全球|世界|行业|国际)领先", "表现出色"),
    (ABSOLUTE, r"绝对", "真的"),
    (ABSOLUTE, r"无敌|终极|至尊|巅峰", "超值"),
    (ABSOLUTE, r"(?:销量|行业|性价比)?之王|销量冠军|冠军", "热门款"),
    (ABSOLUTE, r"首家|首个|首款", "新"),
    # --- endorsements by the state -----------------------------------------------------------
    (ENDORSEMENT,
     r"(?:国家|政府|国务院|卫健委|卫生部|药监局|工信部|农业部|人民日报|新华社|央视|CCTV|领导人|主席|总理|部长|官员)"
     r"(?:[有相]关)?(?:机关|部门|单位|机构|部委|官方)?(?:都|也)?(?:推荐|指定|认证|认可|监制|特供|专供|背书|点赞|力荐|同款|代言)",
     "好评推荐"),
    (ENDORSEMENT, r"国宴(?:专用|指定|同款)?|特供|专供", "正规渠道供应"),
    (ENDORSEMENT, r"(?:国家)?领导人", "很多朋友"),
    # --- inspection exemption ----------------------------------------------------------------
    (INSPECTION_EXEMPT, r"免检", "检验合格"),
    # --- medical and efficacy claims ---------------------------------------------------------
    (MEDICAL, r"(?<!代替药物)(?<!替代药物)(?:治疗|治愈|根治)", "护理"),
    (MEDICAL, r"消炎|抗炎|消肿|止痛|止咳|抗过敏", "舒缓"),
    (MEDICAL, r"抗癌|防癌|抗肿瘤|降血压|降血糖|降血脂|降三高", "日常饮食搭配"),
    (MEDICAL, r"祛斑|去斑", "提亮肤色"),
    (MEDICAL, r"祛痘|去痘", "清洁控油"),
    (MEDICAL, r"防脱生发|防脱发|生发(?=液|水|精华|效果|功效)", "头皮清洁"),
    (MEDICAL, r"减肥|瘦身|排毒", "轻负担"),
    (MEDICAL, r"丰胸|壮阳|助眠", "放松"),
    (MEDICAL, r"(?:增强|提高|提升)免疫力", "营养均衡"),
    (MEDICAL, r"疗效|药效", "使用感受"),
    (MEDICAL, r"抗衰老|抗衰", "保湿紧致"),
)

COMPILED: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (rule, re.compile(pattern), suggestion) for rule, pattern, suggestion in TABLE
)
