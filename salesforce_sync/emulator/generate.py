"""Deterministic, realistic records for a new emulated org, in the org's storage form.

Every value is a pure function of (seed, object, record index, field): a counter-based hash
(splitmix64, vectorised with numpy) keyed by salts drawn from `random.Random(seed)`. That is what
lets a converted Lead copy its Contact's name and email, and a CampaignMember mirror its person,
without holding a million people in memory: any record's fields can be recomputed from its index.

Record roles are fixed by affine shuffles of each object's index range ("ranks"), so they are spread
over the id space yet countable up front:

* Lead ranks [0, converted) are converted into the Contact of the same rank; ranks
  [converted, converted + duplicates) are unconverted Leads of a person who is also that Contact;
  the top 1% of ranks are soft-deleted.
* Contact, Account and Opportunity ranks work the same way, so references only ever point at live
  records (Salesforce cascades a delete to a record's contacts, members and tasks).

Timestamps are whole seconds, like the `.000` audit stamps Salesforce returns, so ties are common;
bulk imports and mass updates give many records the very same stamp, as in real orgs.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from salesforce_sync.emulator.ids import KEY_PREFIXES, make_id
from salesforce_sync.emulator.schema import (
    ACCOUNT,
    CAMPAIGN,
    CAMPAIGN_MEMBER,
    CONTACT,
    LEAD,
    OPPORTUNITY,
    TASK,
    USER,
)

BATCH_SIZE = 10_000
GENERATED_OBJECTS = ("User", "Account", "Contact", "Lead", "Campaign", "CampaignMember", "Opportunity", "Task")
COUNTABLE_OBJECTS = frozenset(GENERATED_OBJECTS) - {"User"}
ID_POD = "5g"
USER_DOMAIN = "emulated.example.com"
INTEGRATION_USERNAME = f"integration@{USER_DOMAIN}"
INTEGRATION_USER_ID = make_id(KEY_PREFIXES["User"], 1, pod=ID_POD)

DAY = 86_400
HISTORY_SECONDS = 5 * 365 * DAY
RECYCLE_BIN_SECONDS = 14 * DAY
PAST_DAYS = 100 * 366  # birthdates reach furthest back
FUTURE_DAYS = 400  # due, close and campaign end dates reach ahead
DELETED_SHARE = 0.01
CONVERTED_SHARE = 0.08
DUPLICATE_SHARE = 0.03

_OBJECTS = {o.name: o for o in (USER, ACCOUNT, CONTACT, LEAD, CAMPAIGN, CAMPAIGN_MEMBER, OPPORTUNITY, TASK)}
_STORED_NAMES = {name: tuple(f.name for f in obj.stored_fields) for name, obj in _OBJECTS.items()}

Columns = dict[str, Any]  # stored field -> numpy array of the batch's values, or one value for the whole batch


def integration_user_id() -> str:
    """Id of the user the emulated org authenticates API clients as."""
    return INTEGRATION_USER_ID


def default_counts(counts: dict[str, int]) -> dict[str, int]:
    """The full per-object counts: the given ones, plus defaults derived from them for the rest."""
    _check_counts(counts)
    leads, contacts = counts.get("Lead", 0), counts.get("Contact", 0)
    members = counts.get("CampaignMember", 0)
    accounts = counts.get("Account", max(math.ceil(contacts / 5), 1 if counts.get("Opportunity") else 0))
    people = leads + contacts
    campaigns = counts.get("Campaign", max(10, math.ceil(members / max(1, people // 2))) if people or members else 0)
    return {
        "Account": accounts, "Contact": contacts, "Lead": leads, "Campaign": campaigns,
        "CampaignMember": members, "Opportunity": counts.get("Opportunity", accounts // 2),
        "Task": counts.get("Task", people // 20),
    }


def generate_org(seed: int, counts: dict[str, int], now_ms: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Yield (object name, up to BATCH_SIZE rows in storage form), Users first, parents before children.

    The same seed, counts and now_ms always give identical rows. Every stored field of the object is
    a key of every row, in schema order.
    """
    for name, columns in generate_org_columns(seed, counts, now_ms):
        yield name, _rows(name, columns)


def generate_org_columns(seed: int, counts: dict[str, int], now_ms: int) -> Iterator[tuple[str, Columns]]:
    """The batches of `generate_org` as columns, for loading an org without a dict per row: each stored
    field, in schema order, maps to a numpy array (booleans as bool) or to one value shared by the batch."""
    plan = _Plan.build(seed, default_counts(counts), now_ms)
    yield "User", _in_schema_order("User", _user_columns(plan))
    builders = (("Account", _account_columns), ("Contact", _contact_columns), ("Lead", _lead_columns),
                ("Campaign", _campaign_columns), ("CampaignMember", _campaign_member_columns),
                ("Opportunity", _opportunity_columns), ("Task", _task_columns))
    for name, build in builders:
        for idx in _batches(plan.counts[name]):
            yield name, _in_schema_order(name, build(plan, idx))


# ---- input checks ------------------------------------------------------------------------------

def _check_counts(counts: dict[str, int]) -> None:
    for name, value in counts.items():
        if name not in COUNTABLE_OBJECTS:
            raise ValueError(f"generate_org: cannot generate object {name!r}; counts take {sorted(COUNTABLE_OBJECTS)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"generate_org: count for {name} must be a non-negative integer, got {value!r}")


def _check_feasible(counts: dict[str, int], live_people: int) -> None:
    if counts["Contact"] and not counts["Account"]:
        raise ValueError(f"generate_org: {counts['Contact']} Contacts need at least one Account, got Account=0")
    if counts["Opportunity"] and not counts["Account"]:
        raise ValueError(f"generate_org: {counts['Opportunity']} Opportunities need at least one Account, got Account=0")
    members = counts["CampaignMember"]
    capacity = counts["Campaign"] * live_people
    if members > capacity:
        raise ValueError(
            f"generate_org: CampaignMember={members} exceeds the {capacity} distinct (Campaign, person) pairs "
            f"of {counts['Campaign']} Campaigns and {live_people} live Leads and Contacts")


# ---- deterministic draws -----------------------------------------------------------------------

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15


def _mix64(value: int) -> int:
    """splitmix64's finaliser on a Python int: a well-spread 64-bit salt from any integer."""
    z = value & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _hash(salt: int, idx: np.ndarray) -> np.ndarray:
    """splitmix64 of (salt + index * golden gamma), element-wise, as uint64 (wrapping is intended)."""
    z = idx.astype(np.uint64) * np.uint64(_GAMMA) + np.uint64(salt)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class _Draws:
    """Independent uniform draws for a set of records of one object, one stream per field name."""

    def __init__(self, plan: _Plan, space: str, idx: np.ndarray) -> None:
        self.plan, self.space, self.idx = plan, space, idx

    def bits(self, name: str) -> np.ndarray:
        return _hash(self.plan.salt(f"{self.space}.{name}"), self.idx)

    def unit(self, name: str) -> np.ndarray:
        return (self.bits(name) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def chance(self, name: str, probability: float) -> np.ndarray:
        return self.unit(name) < probability

    def below(self, name: str, bound: int | np.ndarray) -> np.ndarray:
        """Integers in [0, bound); `bound` may differ per record."""
        bound = np.asarray(bound, dtype=np.uint64)
        return (self.bits(name) % bound).astype(np.int64)

    def pick(self, name: str, pool: np.ndarray) -> np.ndarray:
        return pool[self.below(name, len(pool))]

    def weighted(self, name: str, cumulative: np.ndarray) -> np.ndarray:
        """Index of the bucket each draw falls in, for cumulative weights ending in 1."""
        return np.searchsorted(cumulative, self.unit(name), side="right")


@dataclass(frozen=True)
class _Shuffle:
    """An affine bijection of range(n) mapping record index <-> rank; the top `deleted` ranks are soft-deleted."""

    n: int
    multiplier: int
    offset: int
    inverse: int
    deleted: int

    @classmethod
    def build(cls, rng: random.Random, n: int) -> _Shuffle:
        if n <= 1:
            return cls(max(n, 1), 1, 0, 1, 0)
        multiplier = _coprime_stride(rng, n)
        return cls(n, multiplier, rng.randrange(n), pow(multiplier, -1, n), round(DELETED_SHARE * n))

    @property
    def live(self) -> int:
        return self.n - self.deleted

    def rank(self, idx: np.ndarray) -> np.ndarray:
        return (idx * self.multiplier + self.offset) % self.n

    def index(self, rank: np.ndarray) -> np.ndarray:
        return ((rank - self.offset) * self.inverse) % self.n


# ---- static pools ------------------------------------------------------------------------------

def _objects(*values: Any) -> np.ndarray:
    """A 1-d object array of the values (np.array would nest tuples into 2-d)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _ascii(text: str) -> str:
    """A lower-case ASCII form of a Latin-script name for email local parts: 'Sørensen' -> 'sorensen'."""
    special = str.maketrans({"ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ł": "l", "Ł": "L",
                             "ı": "i", "đ": "d", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th"})
    folded = unicodedata.normalize("NFKD", text.translate(special))
    return "".join(c for c in folded.lower() if c.isascii() and (c.isalnum() or c == "-"))


def _names(text: str) -> list[tuple[str, str]]:
    """'Søren Zoë' or '伟:wei 芳:fang' -> [(display, ascii), ...]; space separates, '_' stands for a space."""
    out = []
    for item in text.split():
        display, _, ascii_form = item.partition(":")
        display = display.replace("_", " ")
        out.append((display, ascii_form or _ascii(display.replace(" ", ""))))
    return out


_LOCALES: dict[str, tuple[float, str, str]] = {
    # locale: (share of people, first names, last names)
    "en": (0.42,
           "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Sarah Emily "
           "Christopher Jessica Daniel Ashley Matthew Seán Siobhán Mary-Kate Zoë Renée D'Andre Aoife Liam "
           "Olivia Noah",
           "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor O'Brien O'Connor O'Neill "
           "McDonald MacLeod D'Angelo Smith-Jones Fitzgerald Null St._John Van_der_Berg de_la_Cruz Nguyen Patel "
           "Kim"),
    "fr": (0.08,
           "Jean-Luc Amélie François Hélène Zoë Chloé Léa Mathéo Noël Anaïs Jérôme Céline Benoît Gaëlle "
           "Marie-Claire Loïc",
           "Dubois Lefèvre Girard Moreau Rousseau Bénard Lemaître Faure-Dumont D'Arcy Leclerc Fontaine "
           "Chevalier Garçon"),
    "es": (0.09,
           "José María Nuria Iñaki Begoña Ramón Inés Sofía Jesús Ángel Lucía Martín Joaquín María_José",
           "Muñoz Peña Núñez García Fernández Ibáñez López-Gómez Rodríguez Martínez Sánchez Gutiérrez "
           "de_la_Fuente Castaño"),
    "de": (0.08,
           "Jürgen Björn Jörg Günther Änne Lukas Käthe Uwe Sören Hans-Peter Maximilian",
           "Müller Schäfer Weiß Strauß Groß Köhler Meyer-Lübke Schröder Krüger Hoffmann Großmann"),
    "nordic": (0.04,
               "Søren Bjørn Åsa Øyvind Mette Kåre Sigríður Ingrid Þóra Jón Åke Linnéa",
               "Sørensen Ødegård Åberg Kjær Løvland Bjørnsdóttir Guðmundsson Lindqvist Ström"),
    "pl_tr": (0.04,
              "Łukasz Małgorzata Wojciech Zofia Şükrü Gülşen İbrahim Çağla Ömer Ayşe",
              "Wójcik Kowalczyk Dąbrowski Żółkiewska Yılmaz Öztürk Çelik Şahin Kılıç Aydın"),
    "zh": (0.07,
           "伟:wei 芳:fang 娜:na 秀英:xiuying 敏:min 静:jing 强:qiang 磊:lei 洋:yang 婷:ting 浩然:haoran 子涵:zihan",
           "王:wang 李:li 张:zhang 刘:liu 陈:chen 杨:yang 黄:huang 赵:zhao 周:zhou 欧阳:ouyang"),
    "ja": (0.06,
           "太郎:taro 花子:hanako 翔太:shota さくら:sakura 陽菜:hina 健:ken 結衣:yui 大輔:daisuke ゆうき:yuki 美咲:misaki",
           "佐藤:sato 鈴木:suzuki 高橋:takahashi 田中:tanaka 渡辺:watanabe 伊藤:ito 山本:yamamoto 中村:nakamura"),
    "ru": (0.05,
           "Иван:ivan Ольга:olga Дмитрий:dmitry Наталья:natalya Сергей:sergey Анна:anna Алексей:alexey "
           "Екатерина:ekaterina Юлия:yulia",
           "Иванов:ivanov Смирнова:smirnova Кузнецов:kuznetsov Попова:popova Соколов:sokolov "
           "Лебедева:lebedeva Новиков:novikov Морозова:morozova"),
    "ar": (0.04,
           "محمد:mohammed فاطمة:fatima أحمد:ahmed ليلى:layla يوسف:youssef مريم:maryam عمر:omar نور:nour",
           "العلي:alali حداد:haddad منصور:mansour الخطيب:alkhatib سليمان:suleiman عبد_الله:abdullah"),
    "el": (0.03,
           "Γιώργος:giorgos Μαρία:maria Νίκος:nikos Ελένη:eleni Δημήτρης:dimitris Κατερίνα:katerina Σοφία:sofia",
           "Παπαδόπουλος:papadopoulos Κωνσταντίνου:konstantinou Γεωργίου:georgiou Νικολάου:nikolaou "
           "Οικονόμου:oikonomou"),
}
_LOCALE_NAMES = tuple(_LOCALES)
_LOCALE_CUMULATIVE = np.cumsum([share for share, _, _ in _LOCALES.values()]) / sum(s for s, _, _ in _LOCALES.values())
_PREFERRED_LANGUAGE = np.array([{"en": "English", "fr": "French", "de": "German", "ja": "Japanese",
                                 "es": "Spanish"}.get(name) for name in _LOCALE_NAMES], dtype=object)


@dataclass(frozen=True)
class _Grouped:
    """Parallel value arrays grouped by locale, so a per-record locale selects within its own group."""

    columns: dict[str, np.ndarray]
    offsets: np.ndarray
    sizes: np.ndarray

    @classmethod
    def build(cls, groups: Sequence[Sequence[tuple[Any, ...]]], names: Sequence[str]) -> _Grouped:
        sizes = np.array([len(g) for g in groups], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        rows = [row for group in groups for row in group]
        columns = {name: _objects(*(row[i] for row in rows)) for i, name in enumerate(names)}
        return cls(columns, offsets, sizes)

    def choose(self, draws: _Draws, name: str, locale: np.ndarray) -> np.ndarray:
        return self.offsets[locale] + draws.below(name, self.sizes[locale])


def _with_caps(pairs: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    return [(display, ascii_form, ascii_form.capitalize(), display + " ") for display, ascii_form in pairs]


_NAME_COLUMNS = ("name", "ascii", "caps", "name_")
_FIRST = _Grouped.build([_with_caps(_names(first)) for _, first, _ in _LOCALES.values()], _NAME_COLUMNS)
# Email local-part prefixes per first name; column 2 * style + capitalised, styles 'ann.', 'ann', 'ann_', 'a'.
_FIRST_LOCAL_PARTS = np.array(
    [[form for style in (".", "", "_", None) for form in
      ((lower + style, caps + style) if style is not None else (lower[:1], caps[:1]))]
     for lower, caps in zip(_FIRST.columns["ascii"], _FIRST.columns["caps"])], dtype=object)
_LAST = _Grouped.build([_with_caps(_names(last)) for _, _, last in _LOCALES.values()], _NAME_COLUMNS)


@functools.cache
def _picklist(object_name: str, field_name: str) -> np.ndarray:
    """The field's picklist values from the schema, so generated values are always valid ones."""
    return _objects(*_OBJECTS[object_name].field(field_name).picklist)  # type: ignore[union-attr]


_FREE_MAIL = _objects("example.com", "example.org", "example.net", "mail.example.com", "post.example",
                      "inbox.example", "web.example", "correo.example", "posteo.example")
_EMAIL_SUFFIXES = _objects(*([""] * 500), *(str(n) for n in range(1, 400)), *(str(y) for y in range(1950, 2010)))
_TITLES = _objects(
    "CEO", "CTO", "VP of Marketing", "Marketing Manager", "Head of Growth", "Software Engineer",
    "Sales Director", "Account Executive", "Office Manager", "Directeur Commercial", "Responsable Marketing",
    "Geschäftsführer", "Leiter Vertrieb", "Director de Marketing", "営業部長", "マーケティング担当", "市场总监",
    "Менеджер по продажам", "مدير التسويق", "Διευθυντής Πωλήσεων", "R&D Lead", "Sales & Operations",
    "Founder/CEO", "Sr. Manager, Demand Gen", 'Chief "Happiness" Officer', "N/A",
)
_DEPARTMENTS = _objects("Marketing", "Sales", "R&D", "Finance", "IT", "Operations", "Einkauf", "Ventes",
                        "営業部", "Customer Success", "Legal & Compliance")
_DESCRIPTIONS = _objects(
    'Met at the "Dreamforce" booth; asked for a demo.',
    "Interested in pricing.\nFollow up next quarter.",
    "Prefers email.\r\nDo not call before 10am.",
    "Notes, with, commas",
    "Tab\tseparated\tnotes",
    'Said: "call me back, please" - twice',
    "Back\\slash path C:\\temp\\leads.csv",
    "N/A",
    "NULL",
    "Kunde möchte ein Angebot über 50 Lizenzen.",
    "展示会で名刺交換。来月フォローアップ。",
    "Клиент просит перезвонить.",
    "Emoji-friendly customer 🎉",
    "  leading and trailing spaces  ",
    "'single quotes' and ''doubled'' ones",
    "Line one\n\nLine three, after a blank line",
    "Semicolon; separated; notes",
    "Long history: " + " ".join(f"Call {n}: discussed renewal, budget and timeline." for n in range(1, 60)),
)
_COMPANIES = [
    # (name, web slug, suffixes separated by '|')
    ("Acme", "acme", " Inc.| Corp.|"), ("Globex", "globex", " Corporation| LLC"), ("Initech", "initech", " Inc.|"),
    ("Umbrella", "umbrella", " Holdings| Ltd"), ("Hooli", "hooli", "| Inc."), ("Stark Industrial", "stark", " Group|"),
    ("Vandelay Imports", "vandelay", " LLC|"), ("Cyberdyne", "cyberdyne", " Systems|"),
    ("Müller & Söhne", "mueller-soehne", " GmbH| KG"), ("Société Générale des Eaux", "sge", " SA|"),
    ("Café Olé", "cafe-ole", " SARL|"), ("O'Malley Brothers", "omalley", "| Ltd"),
    ("Smith, Jones & Partners", "smithjones", " LLP|"), ('The "Original" Pizza Co', "original-pizza", ""),
    ("Tōkyō Trading", "tokyo-trading", " K.K.|"), ("株式会社サンプル", "sample-kk", ""), ("北京科技", "beijing-tech", " 有限公司|"),
    ("ООО Ромашка", "romashka", ""), ("شركة الأمل", "alamal", ""), ("Αθηναϊκή Τεχνική", "athens-tech", " Α.Ε.|"),
    ("Nordisk Fjäll", "fjall", " AB| AS"), ("Zürich Präzision", "zh-praezision", " AG"),
    ("Łódź Textiles", "lodz-textiles", " Sp. z o.o."), ("İstanbul Lojistik", "ist-lojistik", " A.Ş."),
    ("Bäckerei Groß", "baeckerei-gross", ""), ("Ñandú Labs", "nandu", " S.L.|"), ("Blue Sky Dental", "bluesky", "| PLLC"),
    ("Riverside Schools", "riverside", " District|"), ("Northwind Traders", "northwind", "| Ltd"),
]
_COMPANY_NAMES = _objects(*(name + suffix for name, _, suffixes in _COMPANIES for suffix in suffixes.split("|")))
_COMPANY_SLUGS = _objects(*(slug for _, slug, suffixes in _COMPANIES for _ in suffixes.split("|")))
_COMPANY_DOMAINS = _objects(*(slug + ".example" for _, slug, _ in _COMPANIES))
_WEBSITE_FORMS = (("https://www.", ".example"), ("http://", ".example/"), ("", ".example"), ("www.", ".example"))
_REGIONS = _objects(" (EMEA)", " - Deutschland", " APAC", " France", " US West", " (Holding)")
_NOT_PROVIDED = "[not provided]"
_BOUNCE_REASON = "550 5.1.1 The email account that you tried to reach does not exist."
_INTERESTS = _objects(*(";".join(combo) for size in (1, 2, 3)
                        for combo in itertools.combinations(_picklist("Lead", "Interests__c"), size)))
_PRODUCTS = _objects("Analytics Suite", "Annual Renewal", "Expansion - 50 seats", "Pilot (Q3)",
                     "Premium Support", "Platform licences, 3 years", "Onboarding & Training")
_CAMPAIGN_THEMES = _objects(
    "Spring Webinar: Analytics", "Dreamforce Booth", "Newsletter - Mai", "Salon Lyon, Édition d'été",
    "東京セミナー", "Вебинар по CRM", 'The "Big" Launch', "Partner, Referral & Co.", "Q4 Nurture",
    "Trade Show München", "Customer Advisory Board", "Black Friday Email Blast",
)
_TASK_SUBJECTS = _objects("Call", "Email", "Send Letter", "Send Quote", "Other", 'Email: Re: "pricing", urgent',
                          "Follow-up call\nleft voicemail", "Rückruf vereinbaren")
_TASK_SUBTYPE_BY_SUBJECT = _objects("Call", "Email", "Task", "Task", "Task", "Email", "Call", "Call")
_CONVERTED_STATUS = "Closed - Converted"
_OPEN_LEAD_STATUSES = _picklist("Lead", "Status")[_picklist("Lead", "Status") != _CONVERTED_STATUS]
_STAGES = _picklist("Opportunity", "StageName")
_STAGE_PROBABILITIES = np.array([{"Prospecting": 10.0, "Qualification": 20.0, "Proposal/Price Quote": 75.0,
                                  "Closed Won": 100.0, "Closed Lost": 0.0}[stage] for stage in _STAGES])

# Cities by locale: (city, state, country, postal pattern: '#' digit, 'L' letter); and street names.
_PLACES: dict[str, tuple[list[tuple[str, str | None, str, str]], list[str], bool]] = {
    "en": ([("San Francisco", "CA", "United States", "941##"), ("New York", "NY", "USA", "100##"),
            ("Austin", "TX", "US", "787##-####"), ("Chicago", "IL", "United States", "606##"),
            ("London", None, "United Kingdom", "LL# #LL"), ("Dublin", None, "Ireland", "D0# L###"),
            ("Toronto", "ON", "Canada", "L#L #L#"), ("Sydney", "NSW", "Australia", "2###")],
           ["Market St", "Main Street", "Broadway", "O'Farrell St", "Baker Street", "King's Road", "Elm Ave"], True),
    "fr": ([("Paris", "Île-de-France", "France", "750##"), ("Lyon", "Auvergne-Rhône-Alpes", "France", "6900#"),
            ("Montréal", "QC", "Canada", "L#L #L#"), ("Bruxelles", None, "Belgique", "1###")],
           ["Rue de l'Église", "Boulevard Saint-Germain", "Avenue des Champs-Élysées", "Rue Saint-Honoré"], True),
    "es": ([("Madrid", "Comunidad de Madrid", "España", "280##"), ("Barcelona", "Cataluña", "Spain", "080##"),
            ("Ciudad de México", "CDMX", "México", "0####"), ("Bogotá", None, "Colombia", "11####")],
           ["Calle Mayor", "Avenida de la Constitución", "Passeig de Gràcia", "Calle de Núñez de Balboa"], False),
    "de": ([("Berlin", "Berlin", "Deutschland", "10###"), ("München", "Bayern", "Germany", "80###"),
            ("Wien", None, "Österreich", "1###"), ("Zürich", "ZH", "Schweiz", "80##")],
           ["Hauptstraße", "Königsallee", "Schloßstraße", "Bahnhofstr."], False),
    "nordic": ([("København", None, "Danmark", "1###"), ("Oslo", None, "Norge", "0###"),
                ("Stockholm", None, "Sverige", "1## ##"), ("Reykjavík", None, "Ísland", "1##")],
               ["Østerbrogade", "Karl Johans gate", "Drottninggatan", "Laugavegur"], False),
    "pl_tr": ([("Kraków", "małopolskie", "Polska", "3#-###"), ("Łódź", "łódzkie", "Poland", "9#-###"),
               ("İstanbul", None, "Türkiye", "34###"), ("Ankara", None, "Turkey", "06###")],
              ["ul. Floriańska", "ul. Piotrkowska", "İstiklal Caddesi", "Atatürk Bulvarı"], False),
    "zh": ([("北京", "北京市", "中国", "100###"), ("上海", "上海市", "China", "200###"), ("深圳", "广东省", "中国", "518###")],
           ["建国路", "南京东路", "深南大道"], False),
    "ja": ([("東京", "東京都", "日本", "1##-####"), ("大阪", "大阪府", "Japan", "5##-####"), ("京都", "京都府", "日本", "6##-####")],
           ["千代田区丸の内", "北区梅田", "中京区河原町"], False),
    "ru": ([("Москва", None, "Россия", "1#####"), ("Санкт-Петербург", None, "Russia", "19####"),
            ("Новосибирск", None, "Россия", "630###")],
           ["ул. Тверская", "Невский проспект", "ул. Ленина"], False),
    "ar": ([("دبي", None, "الإمارات", ""), ("Riyadh", None, "Saudi Arabia", "1####"), ("القاهرة", None, "مصر", "11###"),
            ("Amman", None, "Jordan", "11###")],
           ["شارع الشيخ زايد", "King Fahd Road", "شارع التحرير"], True),
    "el": ([("Αθήνα", "Αττική", "Ελλάδα", "10# ##"), ("Θεσσαλονίκη", None, "Greece", "54# ##")],
           ["Οδός Ερμού", "Λεωφόρος Βασιλίσσης Σοφίας"], False),
}
_SECOND_LINES = ("Suite 200\n", "Apt. 4B\n", "c/o Accounts Payable\n", "Bâtiment B\r\n", "2. OG\n", "Floor 3, Unit 12\n")

_USERS = (
    # first, last, username and email local part, alias, time zone, active
    ("Integration", "User", "integration", "integ", "America/Los_Angeles", True),
    ("Ada", "Admin", "admin", "aadmin", "America/New_York", True),
    ("Zoë", "Ødegård", "zoe.odegard", "zodeg", "Europe/London", True),
    ("José", "Muñoz", "jose.munoz", "jmuno", "America/New_York", True),
    ("さくら", "佐藤", "sakura.sato", "ssato", "Asia/Tokyo", True),
    ("Seán", "O'Brien", "sean.obrien", "sobri", "Europe/London", False),
)


# ---- the plan: counts, salts, shuffles and per-seed pools ----------------------------------------

@dataclass
class _Plan:
    """Everything derived once from (seed, counts, now): salts, record-role shuffles and value pools."""

    counts: dict[str, int]
    now: int  # seconds
    base_salt: int
    leads: _Shuffle
    contacts: _Shuffle
    accounts: _Shuffle
    opportunities: _Shuffle
    converted: int
    duplicates: int
    conversion_opportunities: int
    member_stride: int
    external_key_multiplier: int
    external_key_offset: int
    import_times: np.ndarray
    mass_update_times: np.ndarray
    phones: np.ndarray
    addresses: _Grouped
    user_ids: np.ndarray
    owners: np.ndarray
    editors: np.ndarray
    first_day: int
    day_strings: np.ndarray
    _salts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, seed: int, counts: dict[str, int], now_ms: int) -> _Plan:
        if isinstance(now_ms, bool) or not isinstance(now_ms, int) or now_ms < 0:
            raise ValueError(f"generate_org: now_ms must be a non-negative integer of epoch milliseconds, got {now_ms!r}")
        rng = random.Random(seed)
        base_salt = rng.getrandbits(64)
        shuffles = {name: _Shuffle.build(rng, counts[name]) for name in ("Lead", "Contact", "Account", "Opportunity")}
        leads, contacts = shuffles["Lead"], shuffles["Contact"]
        live_contacts = contacts.live if counts["Contact"] else 0
        converted = min(round(CONVERTED_SHARE * counts["Lead"]), live_contacts)
        duplicates = min(round(DUPLICATE_SHARE * counts["Lead"]), live_contacts - converted)
        live_people = (leads.live if counts["Lead"] else 0) + live_contacts
        live_opportunities = shuffles["Opportunity"].live if counts["Opportunity"] else 0
        _check_feasible(counts, live_people)
        now = now_ms // 1000
        first_day = now // DAY - PAST_DAYS
        user_ids = _ids("User", np.arange(len(_USERS)))
        return cls(
            counts=counts, now=now, base_salt=base_salt, leads=leads, contacts=contacts,
            accounts=shuffles["Account"], opportunities=shuffles["Opportunity"],
            converted=converted, duplicates=duplicates,
            conversion_opportunities=min(converted // 3, live_opportunities // 2),
            member_stride=_coprime_stride(rng, live_people),
            external_key_multiplier=rng.getrandbits(40) | 1, external_key_offset=rng.getrandbits(40),
            import_times=np.array(sorted(now - rng.randrange(HISTORY_SECONDS) for _ in range(24)), dtype=np.int64),
            mass_update_times=np.array(sorted(now - rng.randrange(HISTORY_SECONDS // 5) for _ in range(8)),
                                       dtype=np.int64),
            phones=_phone_pool(rng, 3000), addresses=_address_pool(rng),
            user_ids=user_ids,
            owners=user_ids[[1, 2, 2, 3, 3, 4, 4, 5]],
            editors=user_ids[[0, 0, 0, 1, 2, 2, 3, 3, 4, 4]],
            first_day=first_day,
            day_strings=np.datetime_as_string(
                np.arange(first_day, now // DAY + FUTURE_DAYS, dtype=np.int64).astype("datetime64[D]")).astype(object),
        )

    def dates(self, seconds: np.ndarray) -> np.ndarray:
        """'YYYY-MM-DD' (UTC) of epoch seconds, as an object array of str (looked up, not formatted)."""
        days = seconds // DAY - self.first_day
        if len(days) and (days.min() < 0 or days.max() >= len(self.day_strings)):
            raise ValueError(f"generate_org: a generated date lies outside the {PAST_DAYS} days before and "
                             f"{FUTURE_DAYS} days after now")
        return self.day_strings[days]

    def salt(self, label: str) -> int:
        salt = self._salts.get(label)
        if salt is None:
            salt = self._salts[label] = _mix64(self.base_salt ^ (zlib.crc32(label.encode()) * _GAMMA))
        return salt

    @functools.cached_property
    def member_counts(self) -> tuple[np.ndarray, np.ndarray]:
        return _campaign_member_counts(self)

    @functools.cached_property
    def campaigns_created(self) -> np.ndarray:
        return _campaign_stamps(self, np.arange(self.counts["Campaign"])).created

    @property
    def live_leads(self) -> int:
        return self.leads.live if self.counts["Lead"] else 0

    @property
    def live_contacts(self) -> int:
        return self.contacts.live if self.counts["Contact"] else 0


def _coprime_stride(rng: random.Random, n: int) -> int:
    """A multiplier in [1, n) coprime to n, so i -> i * stride mod n is a bijection that scatters neighbours."""
    if n <= 3:
        return 1
    stride = rng.randrange(n // 3 + 1, n)
    while math.gcd(stride, n) != 1:
        stride = stride % (n - 1) + 1
    return stride


def _fill_pattern(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randrange(10)) if c == "#" else rng.choice("ABCDEFGHJKLMNPRSTUVWXY") if c == "L" else c
                   for c in pattern)


def _phone_pool(rng: random.Random, size: int) -> np.ndarray:
    """Phone numbers in the formats people really type: US fictional 555-01xx lines and international ones."""
    def digits(n: int) -> str:
        return "".join(str(rng.randrange(10)) for _ in range(n))

    formats = (
        lambda a, l: f"({a}) 555-01{l}", lambda a, l: f"{a}-555-01{l}", lambda a, l: f"{a}.555.01{l}",
        lambda a, l: f"+1 {a} 555 01{l}", lambda a, l: f"{a}55501{l}", lambda a, l: f"({a}) 555-01{l} ext. {digits(3)}",
        lambda a, l: f"+1-{a}-555-01{l} x{digits(2)}", lambda a, l: f"+44 20 7946 0{digits(3)}",
        lambda a, l: f"+49 30 {digits(8)}", lambda a, l: f"+33 1 {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
        lambda a, l: f"+81-3-{digits(4)}-{digits(4)}", lambda a, l: f"+7 495 {digits(3)}-{digits(2)}-{digits(2)}",
        lambda a, l: f"0{digits(3)} {digits(6)}", lambda a, l: f"+86 10 {digits(4)} {digits(4)}",
    )
    area_codes = ("415", "212", "512", "312", "646", "206", "617", "303")
    return _objects(*(rng.choice(formats)(rng.choice(area_codes), digits(2)) for _ in range(size)))


def _address_pool(rng: random.Random) -> _Grouped:
    """Per-locale (street, city, state, postal code, country) rows; some streets span two lines."""
    groups = []
    for locale in _LOCALE_NAMES:
        places, streets, number_first = _PLACES[locale]
        group = []
        for _ in range(40):
            city, state, country, postal = rng.choice(places)
            street, number = rng.choice(streets), rng.randrange(1, 400)
            line = f"{number} {street}" if number_first else f"{street} {number}"
            if rng.random() < 0.15:
                line = rng.choice(_SECOND_LINES) + line
            group.append((line, city, state, _fill_pattern(rng, postal) or None, country))
        groups.append(group)
    return _Grouped.build(groups, ("street", "city", "state", "postal", "country"))


# ---- vectorised value helpers ------------------------------------------------------------------

_BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
_CHECKSUM = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", dtype=np.uint8)


def _digits(values: np.ndarray, alphabet: np.ndarray, width: int) -> np.ndarray:
    """Fixed-width, most-significant-first digits of non-negative ints as an (n, width) uint8 ASCII matrix."""
    out = np.empty((len(values), width), dtype=np.uint8)
    rest = values.astype(np.int64)
    for position in range(width - 1, -1, -1):
        rest, digit = np.divmod(rest, len(alphabet))
        out[:, position] = alphabet[digit]
    if rest.any():
        raise ValueError(f"generate_org: record number {int(values.max())} does not fit {width} digits")
    return out


def _strings(chars: np.ndarray) -> np.ndarray:
    """An (n, width) uint8 ASCII matrix as an object array of str."""
    width = chars.shape[1]
    return np.ascontiguousarray(chars).view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def _ids(object_name: str, idx: np.ndarray) -> np.ndarray:
    """18-char ids of records idx (record number idx + 1), equal to ids.make_id(prefix, idx + 1, ID_POD)."""
    chars = np.empty((len(idx), 18), dtype=np.uint8)
    chars[:, :6] = np.frombuffer((KEY_PREFIXES[object_name] + ID_POD + "0").encode(), dtype=np.uint8)
    chars[:, 6:15] = _digits(np.asarray(idx) + 1, _BASE62, 9)
    upper = ((chars[:, :15] >= ord("A")) & (chars[:, :15] <= ord("Z"))).reshape(-1, 3, 5)
    chars[:, 15:] = _CHECKSUM[(upper * (1 << np.arange(5))).sum(axis=2)]
    return _strings(chars)


def _maybe(present: np.ndarray, values: Any) -> np.ndarray:
    """values where present, None elsewhere (an object array)."""
    return np.where(present, values, None)


def _between(draws: _Draws, name: str, low: np.ndarray, high: np.ndarray | int) -> np.ndarray:
    """A whole second in [low, high] per record."""
    return low + ((high - low) * draws.unit(name)).astype(np.int64)


def _in_schema_order(object_name: str, columns: Columns) -> Columns:
    """The columns keyed by every stored field of the object, in schema order."""
    names = _STORED_NAMES[object_name]
    if columns.keys() != set(names):
        raise ValueError(
            f"generate_org: {object_name} columns out of step with the schema: missing "
            f"{sorted(set(names) - columns.keys())}, unexpected {sorted(columns.keys() - set(names))}")
    return {name: columns[name] for name in names}


def _rows(object_name: str, columns: Columns) -> list[dict[str, Any]]:
    """Columns in schema order -> row dicts (booleans as 0/1)."""
    names = _STORED_NAMES[object_name]
    values = []
    for name in names:
        value = columns[name]
        if isinstance(value, np.ndarray):
            values.append((value.astype(np.int8) if value.dtype == np.bool_ else value).tolist())
        else:
            values.append(itertools.repeat(value))
    return [dict(zip(names, row)) for row in zip(*values)]


def _batches(count: int) -> Iterator[np.ndarray]:
    for start in range(0, count, BATCH_SIZE):
        yield np.arange(start, min(count, start + BATCH_SIZE), dtype=np.int64)


# ---- timestamps --------------------------------------------------------------------------------

@dataclass
class _Stamps:
    """CreatedDate <= LastModifiedDate <= SystemModstamp <= now, in epoch seconds, and IsDeleted."""

    created: np.ndarray
    modified: np.ndarray
    modstamp: np.ndarray
    deleted: np.ndarray

    def start_at(self, mask: np.ndarray, created: np.ndarray) -> None:
        """Move the creation of the masked records (e.g. to a conversion), keeping the order of stamps."""
        self.created[mask] = created
        np.maximum(self.modified, self.created, out=self.modified)
        np.maximum(self.modstamp, self.modified, out=self.modstamp)


def _timeline(plan: _Plan, draws: _Draws, deleted: np.ndarray, earliest: np.ndarray | None = None) -> _Stamps:
    """Audit stamps over ~5 years, more recent than old, with bulk imports, mass updates and a recent tail."""
    now = plan.now
    low = np.full(len(draws.idx), now - HISTORY_SECONDS, dtype=np.int64) if earliest is None else earliest
    created = now - ((now - low) * draws.unit("Created") ** 1.3).astype(np.int64)
    imported = plan.import_times[draws.below("ImportBatch", len(plan.import_times))]
    created = np.where(draws.chance("Imported", 0.04) & (imported >= low), imported, created)

    kind, when = draws.unit("ModifiedKind"), draws.unit("Modified")
    edited = created + ((now - created) * when).astype(np.int64)
    last_days = np.maximum(created, now - (3 * DAY * when).astype(np.int64))
    last_hours = np.maximum(created, now - (2 * 3600 * when).astype(np.int64))
    mass = np.maximum(created, plan.mass_update_times[draws.below("MassUpdate", len(plan.mass_update_times))])
    modified = np.select([kind < 0.35, kind < 0.90, kind < 0.96, kind < 0.98],
                         [created, edited, last_days, last_hours], mass)

    touched = draws.chance("SystemTouched", 0.1)
    later = np.minimum(now - modified, (DAY * draws.unit("SystemDelay")).astype(np.int64))
    modstamp = modified + np.where(touched, later, 0)

    deletion = np.maximum(created, now - (RECYCLE_BIN_SECONDS * draws.unit("DeletedAt")).astype(np.int64))
    modified = np.where(deleted, deletion, modified)
    modstamp = np.where(deleted, deletion, modstamp)
    return _Stamps(created, modified, modstamp, deleted)


def _audit(plan: _Plan, draws: _Draws, stamps: _Stamps, *, views: bool = True) -> dict[str, Any]:
    """Audit and recently-viewed columns shared by the business objects."""
    columns: dict[str, Any] = {
        "IsDeleted": stamps.deleted,
        "CreatedDate": stamps.created * 1000, "CreatedById": draws.pick("CreatedBy", plan.editors),
        "LastModifiedDate": stamps.modified * 1000, "LastModifiedById": draws.pick("LastModifiedBy", plan.editors),
        "SystemModstamp": stamps.modstamp * 1000,
    }
    if views:
        viewed = _between(draws, "ViewedAt", stamps.created, plan.now) * 1000
        was_viewed = draws.chance("Viewed", 0.08)
        columns.update({
            "LastActivityDate": _maybe(draws.chance("Activity", 0.25),
                                       plan.dates(_between(draws, "ActivityAt", stamps.created, plan.now))),
            "LastViewedDate": _maybe(was_viewed, viewed), "LastReferencedDate": _maybe(was_viewed, viewed),
        })
    return columns


def _lead_stamps(plan: _Plan, idx: np.ndarray) -> _Stamps:
    """Lead stamps; a converted Lead was created before, and last modified at, its Contact's creation."""
    rank = plan.leads.rank(idx)
    stamps = _timeline(plan, _Draws(plan, "Lead", idx), rank >= plan.leads.live)
    converted = rank < plan.converted
    if converted.any():
        conversion = _contact_stamps(plan, plan.contacts.index(rank[converted])).created
        stamps.created[converted] = np.minimum(stamps.created[converted], conversion)
        stamps.modified[converted] = conversion
        stamps.modstamp[converted] = conversion
    return stamps


def _contact_stamps(plan: _Plan, idx: np.ndarray) -> _Stamps:
    return _timeline(plan, _Draws(plan, "Contact", idx), plan.contacts.rank(idx) >= plan.contacts.live)


def _campaign_stamps(plan: _Plan, idx: np.ndarray) -> _Stamps:
    return _timeline(plan, _Draws(plan, "Campaign", idx), np.zeros(len(idx), dtype=bool))


# ---- people ------------------------------------------------------------------------------------

def _people(plan: _Plan, space: str, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Name, contact details, address and opt-outs of the people behind records `idx` of `space`."""
    d = _Draws(plan, space, idx)
    locale = d.weighted("Locale", _LOCALE_CUMULATIVE)
    first_i, last_i = _FIRST.choose(d, "FirstName", locale), _LAST.choose(d, "LastName", locale)
    has_first = ~d.chance("NoFirstName", 0.04)
    first = _maybe(has_first, _FIRST.columns["name"][first_i])
    last = _LAST.columns["name"][last_i]
    name = np.where(has_first, _FIRST.columns["name_"][first_i] + last, last)

    mixed_case = d.chance("EmailMixedCase", 0.08)
    prefix = np.where(has_first, _FIRST_LOCAL_PARTS[first_i, 2 * d.below("EmailStyle", 4) + mixed_case], "")
    last_part = np.where(mixed_case, _LAST.columns["caps"][last_i], _LAST.columns["ascii"][last_i])
    local = prefix + last_part + d.pick("EmailSuffix", _EMAIL_SUFFIXES)
    domain = np.where(d.chance("WorkEmail", 0.5), d.pick("WorkDomain", _COMPANY_DOMAINS),
                      d.pick("FreeMail", _FREE_MAIL))
    shouted = mixed_case & d.chance("UpperDomain", 0.5)
    domain[shouted] = [value.upper() for value in domain[shouted]]
    email = local + "@" + domain
    email_kind = d.unit("EmailKind")
    malformed = (email_kind >= 0.04) & (email_kind < 0.055)
    email[malformed] = _malformed_emails(local[malformed], domain[malformed], d.below("MalformedKind", 3)[malformed])
    email[email_kind < 0.04] = None

    addresses = plan.addresses
    address_i = addresses.choose(d, "Address", locale)
    has_address = ~d.chance("NoAddress", 0.15)
    return {
        "FirstName": first, "LastName": last, "Name": name, "Email": email,
        "Salutation": _maybe(d.chance("Salutation", 0.25), d.pick("SalutationValue", _picklist("Lead", "Salutation"))),
        "Title": _maybe(~d.chance("NoTitle", 0.2), d.pick("Title", _TITLES)),
        "Phone": _maybe(d.chance("Phone", 0.8), d.pick("PhoneValue", plan.phones)),
        "MobilePhone": _maybe(d.chance("Mobile", 0.35), d.pick("MobileValue", plan.phones)),
        "Street": _maybe(has_address & ~d.chance("NoStreet", 0.1), addresses.columns["street"][address_i]),
        "City": _maybe(has_address, addresses.columns["city"][address_i]),
        "State": _maybe(has_address, addresses.columns["state"][address_i]),
        "PostalCode": _maybe(has_address & ~d.chance("NoPostalCode", 0.1), addresses.columns["postal"][address_i]),
        "Country": _maybe(has_address, addresses.columns["country"][address_i]),
        "HasOptedOutOfEmail": d.chance("OptedOutOfEmail", 0.04),
        "DoNotCall": d.chance("DoNotCall", 0.06),
        "HasOptedOutOfFax": d.chance("OptedOutOfFax", 0.02),
        "locale": locale,
    }


def _malformed_emails(local: np.ndarray, domain: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """The typos people make: 'bob@', 'no-at-sign.example.com', 'two@@example.com'."""
    return np.select([kind == 0, kind == 1], [local + "@", local + "." + domain], local + "@@" + domain)


def _lead_people(plan: _Plan, idx: np.ndarray) -> dict[str, np.ndarray]:
    """People of Leads; converted and duplicate Leads are the same person as their Contact."""
    people = _people(plan, "Lead", idx)
    rank = plan.leads.rank(idx)
    linked = rank < plan.converted + plan.duplicates
    if linked.any():
        contact_people = _people(plan, "Contact", plan.contacts.index(rank[linked]))
        for key, values in people.items():
            values[linked] = contact_people[key]
    return people


def _contact_accounts(plan: _Plan, idx: np.ndarray) -> np.ndarray:
    """Account index of each Contact (always a live Account), -1 for the few private Contacts."""
    d = _Draws(plan, "Contact", idx)
    account = plan.accounts.index(d.below("Account", max(plan.accounts.live, 1)))
    private = d.chance("Private", 0.03) & (plan.contacts.rank(idx) >= plan.converted + plan.duplicates)
    return np.where(private, -1, account)


def _account_names(plan: _Plan, idx: np.ndarray) -> np.ndarray:
    d = _Draws(plan, "Account", idx)
    names = d.pick("Name", _COMPANY_NAMES)
    return np.where(d.chance("Regional", 0.15), names + d.pick("Region", _REGIONS), names)


def _lead_companies(plan: _Plan, idx: np.ndarray) -> np.ndarray:
    """A Lead's Company; a Lead who is also a Contact works at that Contact's Account."""
    d = _Draws(plan, "Lead", idx)
    company = np.where(d.chance("CompanyNotProvided", 0.02), _NOT_PROVIDED, d.pick("Company", _COMPANY_NAMES))
    rank = plan.leads.rank(idx)
    linked = rank < plan.converted + plan.duplicates
    if linked.any():
        company[linked] = _account_names(plan, _contact_accounts(plan, plan.contacts.index(rank[linked])))
    return company


def _websites(d: _Draws, slugs: np.ndarray) -> np.ndarray:
    form = d.below("WebsiteForm", len(_WEBSITE_FORMS))
    prefixes = _objects(*(p for p, _ in _WEBSITE_FORMS))[form]
    suffixes = _objects(*(s for _, s in _WEBSITE_FORMS))[form]
    return _maybe(~d.chance("NoWebsite", 0.3), prefixes + slugs + suffixes)


def _firmographics(d: _Draws, object_name: str) -> dict[str, Any]:
    revenue = np.round(10 ** (4 + 5 * d.unit("Revenue")), -3)
    employees = (10 ** (4.5 * d.unit("Employees"))).astype(np.int64) + 1
    return {
        "Industry": _maybe(~d.chance("NoIndustry", 0.2), d.pick("IndustryValue", _picklist(object_name, "Industry"))),
        "AnnualRevenue": _maybe(~d.chance("NoRevenue", 0.4), revenue),
        "NumberOfEmployees": _maybe(~d.chance("NoEmployees", 0.35), employees),
    }


def _bounces(d: _Draws, email: np.ndarray, stamps: _Stamps) -> tuple[np.ndarray, np.ndarray]:
    bounced = d.chance("Bounced", 0.01) & (email != None)  # noqa: E711 - element-wise comparison
    when = _between(d, "BouncedAt", stamps.created, stamps.modified) * 1000
    return bounced, _maybe(bounced, when)


# ---- objects -----------------------------------------------------------------------------------

def _user_columns(plan: _Plan) -> Columns:
    idx = np.arange(len(_USERS))
    d = _Draws(plan, "User", idx)
    created = np.full(len(idx), plan.now - HISTORY_SECONDS - 30 * DAY, dtype=np.int64) + idx * 3600
    modified = _between(d, "Modified", created, plan.now)
    viewed = _maybe(d.chance("Viewed", 0.5), _between(d, "ViewedAt", modified, plan.now) * 1000)
    column = list(zip(*_USERS))
    first, last, local, alias, zone, active = (_objects(*values) for values in column)
    usernames = local + "@" + USER_DOMAIN
    return {
        "Id": plan.user_ids, "Username": usernames, "LastName": last, "FirstName": first,
        "Name": first + " " + last, "Email": usernames, "Alias": alias, "IsActive": active.astype(bool),
        "TimeZoneSidKey": zone, "CreatedDate": created * 1000, "CreatedById": plan.user_ids[np.minimum(idx, 1)],
        "LastModifiedDate": modified * 1000, "LastModifiedById": plan.user_ids[np.full(len(idx), 1)],
        "SystemModstamp": modified * 1000, "LastViewedDate": viewed, "LastReferencedDate": viewed,
    }


def _account_columns(plan: _Plan, idx: np.ndarray) -> Columns:
    d = _Draws(plan, "Account", idx)
    stamps = _timeline(plan, d, plan.accounts.rank(idx) >= plan.accounts.live)
    parent = plan.accounts.index(d.below("Parent", max(plan.accounts.live, 1)))
    has_parent = d.chance("HasParent", 0.08) & (parent < idx)
    address_i = plan.addresses.choose(d, "Address", d.weighted("Locale", _LOCALE_CUMULATIVE))
    has_address = ~d.chance("NoAddress", 0.1)
    columns = {
        "Id": _ids("Account", idx), "Name": _account_names(plan, idx),
        "Type": _maybe(~d.chance("NoType", 0.1), d.pick("TypeValue", _picklist("Account", "Type"))),
        "ParentId": _maybe(has_parent, _ids("Account", parent)),
        **{f"Billing{key}": _maybe(has_address, plan.addresses.columns[column][address_i])
           for key, column in (("Street", "street"), ("City", "city"), ("State", "state"),
                               ("PostalCode", "postal"), ("Country", "country"))},
        "Phone": _maybe(d.chance("Phone", 0.7), d.pick("PhoneValue", plan.phones)),
        "Website": _websites(d, d.pick("Slug", _COMPANY_SLUGS)),
        **_firmographics(d, "Account"),
        "Description": _maybe(d.chance("Described", 0.2), d.pick("Description", _DESCRIPTIONS)),
        "OwnerId": d.pick("Owner", plan.owners),
        **_audit(plan, d, stamps),
        "Tier__c": _maybe(d.chance("Tiered", 0.6), d.pick("Tier", _picklist("Account", "Tier__c"))),
    }
    return columns


def _contact_columns(plan: _Plan, idx: np.ndarray) -> Columns:
    d = _Draws(plan, "Contact", idx)
    stamps = _contact_stamps(plan, idx)
    people = _people(plan, "Contact", idx)
    account = _contact_accounts(plan, idx)
    manager = plan.contacts.index(d.below("ReportsTo", max(plan.contacts.live, 1)))
    bounced, bounced_at = _bounces(d, people["Email"], stamps)
    born = plan.now - ((20 + 55 * d.unit("Age")) * 365.25 * DAY).astype(np.int64)
    language = np.where(d.chance("LanguageFromLocale", 0.7), _PREFERRED_LANGUAGE[people["locale"]],
                        d.pick("Language", _picklist("Contact", "Preferred_Language__c")))
    columns = {
        "Id": _ids("Contact", idx),
        "AccountId": _maybe(account >= 0, _ids("Account", np.maximum(account, 0))),
        **{key: people[key] for key in ("LastName", "FirstName", "Salutation", "Name", "Title", "Email", "Phone",
                                        "MobilePhone", "HasOptedOutOfEmail", "DoNotCall", "HasOptedOutOfFax")},
        **{f"Mailing{key}": people[key] for key in ("Street", "City", "State", "PostalCode", "Country")},
        "Description": _maybe(d.chance("Described", 0.15), d.pick("Description", _DESCRIPTIONS)),
        "LeadSource": _maybe(~d.chance("NoSource", 0.15), d.pick("Source", _picklist("Contact", "LeadSource"))),
        "EmailBouncedReason": _maybe(bounced, _BOUNCE_REASON), "EmailBouncedDate": bounced_at,
        "Department": _maybe(d.chance("HasDepartment", 0.5), d.pick("Department", _DEPARTMENTS)),
        "Birthdate": _maybe(d.chance("HasBirthdate", 0.3), plan.dates(born)),
        "ReportsToId": _maybe(d.chance("ReportsToSomeone", 0.1) & (manager < idx), _ids("Contact", manager)),
        "OwnerId": d.pick("Owner", plan.owners),
        "IsEmailBounced": bounced,
        **_audit(plan, d, stamps),
        "Preferred_Language__c": _maybe(~d.chance("NoLanguage", 0.3), language),
        "Lifetime_Value__c": _maybe(d.chance("Valued", 0.6), np.round(50_000 * d.unit("Value") ** 3, 2)),
    }
    return columns


def _lead_columns(plan: _Plan, idx: np.ndarray) -> Columns:
    d = _Draws(plan, "Lead", idx)
    stamps = _lead_stamps(plan, idx)
    people = _lead_people(plan, idx)
    rank = plan.leads.rank(idx)
    converted = rank < plan.converted
    contact_ids, account_ids, opportunity_ids = (np.full(len(idx), None, dtype=object) for _ in range(3))
    if converted.any():
        contact = plan.contacts.index(rank[converted])
        contact_ids[converted] = _ids("Contact", contact)
        account_ids[converted] = _ids("Account", _contact_accounts(plan, contact))
    with_opportunity = rank < plan.conversion_opportunities
    if with_opportunity.any():
        opportunity_ids[with_opportunity] = _ids("Opportunity", plan.opportunities.index(rank[with_opportunity]))
    bounced, bounced_at = _bounces(d, people["Email"], stamps)
    external = (idx.astype(np.uint64) * np.uint64(plan.external_key_multiplier)
                + np.uint64(plan.external_key_offset)) & np.uint64((1 << 40) - 1)
    slugs = _COMPANY_SLUGS[d.below("Company", len(_COMPANY_NAMES))]  # the same draw as the Company name
    columns = {
        "Id": _ids("Lead", idx),
        **{key: people[key] for key in ("LastName", "FirstName", "Salutation", "Name", "Title", "Street", "City",
                                        "State", "PostalCode", "Country", "Email", "Phone", "MobilePhone",
                                        "HasOptedOutOfEmail", "DoNotCall", "HasOptedOutOfFax")},
        "Description": _maybe(d.chance("Described", 0.2), d.pick("Description", _DESCRIPTIONS)),
        "LeadSource": _maybe(~d.chance("NoSource", 0.15), d.pick("Source", _picklist("Lead", "LeadSource"))),
        "EmailBouncedReason": _maybe(bounced, _BOUNCE_REASON), "EmailBouncedDate": bounced_at,
        "Company": _lead_companies(plan, idx),
        "Website": _websites(d, slugs),
        **_firmographics(d, "Lead"),
        "Rating": _maybe(d.chance("Rated", 0.5), d.pick("RatingValue", _picklist("Lead", "Rating"))),
        "Status": np.where(converted, _CONVERTED_STATUS, d.pick("Status", _OPEN_LEAD_STATUSES)),
        "OwnerId": d.pick("Owner", plan.owners),
        "IsConverted": converted,
        "ConvertedDate": _maybe(converted, plan.dates(stamps.modified)),
        "ConvertedAccountId": account_ids, "ConvertedContactId": contact_ids,
        "ConvertedOpportunityId": opportunity_ids,
        "IsUnreadByOwner": d.chance("Unread", 0.1) & ~converted,
        **_audit(plan, d, stamps),
        "Lead_Score__c": _maybe(~d.chance("Unscored", 0.1), np.floor(101 * d.unit("Score"))),
        "Interests__c": _maybe(d.chance("HasInterests", 0.7), d.pick("Interests", _INTERESTS)),
        "External_Key__c": _maybe(~d.chance("NoExternalKey", 0.03),
                                  "LD-" + _strings(_digits(external.astype(np.int64), _HEX, 10))),
        "Newsletter_Signup__c": _maybe(d.chance("Newsletter", 0.35),
                                       plan.dates(_between(d, "SignedUpAt", stamps.created, stamps.modified))),
    }
    return columns


def _campaign_member_counts(plan: _Plan) -> tuple[np.ndarray, np.ndarray]:
    """Members per campaign who are Leads and who are Contacts (the NumberOfLeads/NumberOfContacts roll-ups)."""
    campaigns = plan.counts["Campaign"]
    leads, contacts = np.zeros(campaigns, dtype=np.int64), np.zeros(campaigns, dtype=np.int64)
    for slots in _batches(plan.counts["CampaignMember"]):
        campaign, person = _member_slots(plan, slots)
        is_lead = person < plan.live_leads
        leads += np.bincount(campaign[is_lead], minlength=campaigns)
        contacts += np.bincount(campaign[~is_lead], minlength=campaigns)
    return leads, contacts


def _member_slots(plan: _Plan, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(campaign index, live-person number) of member slots; distinct pairs for distinct slots.

    Live-person numbers [0, live leads) are Lead ranks, the rest Contact ranks after them.
    """
    campaigns = plan.counts["Campaign"]
    people = plan.live_leads + plan.live_contacts
    campaign = slots % campaigns
    turn = slots // campaigns
    person = (turn * plan.member_stride + campaign * (people // max(campaigns, 1) + 1)) % people
    return campaign, person


def _campaign_columns(plan: _Plan, idx: np.ndarray) -> Columns:
    d = _Draws(plan, "Campaign", idx)
    stamps = _campaign_stamps(plan, idx)
    lead_counts, contact_counts = plan.member_counts
    start = _between(d, "StartAt", stamps.created, plan.now + 60 * DAY)
    end = start + ((1 + 90 * d.unit("Length")) * DAY).astype(np.int64)
    year = plan.dates(start).astype("U4").astype(object)
    parent = (d.unit("Parent") * idx).astype(np.int64)
    budget = np.round(1000 + 99_000 * d.unit("Budget"), 2)
    columns = {
        "Id": _ids("Campaign", idx), "Name": year + " " + d.pick("Theme", _CAMPAIGN_THEMES),
        "ParentId": _maybe(d.chance("HasParent", 0.2) & (idx > 0), _ids("Campaign", parent)),
        "Type": d.pick("Type", _picklist("Campaign", "Type")),
        "Status": d.pick("Status", _picklist("Campaign", "Status")),
        "StartDate": plan.dates(start), "EndDate": _maybe(~d.chance("OpenEnded", 0.2), plan.dates(end)),
        "IsActive": d.chance("Active", 0.6),
        "BudgetedCost": _maybe(d.chance("Budgeted", 0.7), budget),
        "ActualCost": _maybe(d.chance("Costed", 0.5), np.round(budget * (0.5 + d.unit("Spend")), 2)),
        "NumberOfLeads": lead_counts[idx], "NumberOfContacts": contact_counts[idx],
        "Description": _maybe(d.chance("Described", 0.5), d.pick("Description", _DESCRIPTIONS)),
        "OwnerId": d.pick("Owner", plan.owners),
        **_audit(plan, d, stamps),
    }
    return columns


def _campaign_member_columns(plan: _Plan, idx: np.ndarray) -> Columns:
    """Members of Leads and Contacts with the person's fields mirrored; none deleted, as Salesforce
    hard-deletes members (with their person) instead of keeping them in the recycle bin."""
    d = _Draws(plan, "CampaignMember", idx)
    campaign, person = _member_slots(plan, idx)
    is_lead = person < plan.live_leads
    lead = plan.leads.index(person[is_lead])
    contact = plan.contacts.index(person[~is_lead] - plan.live_leads)

    mirrors = ("FirstName", "LastName", "Name", "Email", "Phone", "Title", "HasOptedOutOfEmail", "DoNotCall")
    columns: dict[str, Any] = {key: np.empty(len(idx), dtype=object) for key in (*mirrors, "CompanyOrAccount")}
    person_ids = np.empty(len(idx), dtype=object)
    person_created = np.empty(len(idx), dtype=np.int64)
    if len(lead):
        lead_people = _lead_people(plan, lead)
        for key in mirrors:
            columns[key][is_lead] = lead_people[key]
        columns["CompanyOrAccount"][is_lead] = _lead_companies(plan, lead)
        person_ids[is_lead] = _ids("Lead", lead)
        person_created[is_lead] = _lead_stamps(plan, lead).created
    if len(contact):
        contact_people = _people(plan, "Contact", contact)
        for key in mirrors:
            columns[key][~is_lead] = contact_people[key]
        account = _contact_accounts(plan, contact)
        columns["CompanyOrAccount"][~is_lead] = _maybe(account >= 0, _account_names(plan, np.maximum(account, 0)))
        person_ids[~is_lead] = _ids("Contact", contact)
        person_created[~is_lead] = _contact_stamps(plan, contact).created
    for flag in ("HasOptedOutOfEmail", "DoNotCall"):
        columns[flag] = columns[flag].astype(bool)

    earliest = np.maximum(person_created, plan.campaigns_created[campaign])
    stamps = _timeline(plan, d, np.zeros(len(idx), dtype=bool), earliest)
    responded = d.chance("Responded", 0.25)
    columns.update({
        "Id": _ids("CampaignMember", idx), "CampaignId": _ids("Campaign", campaign),
        "LeadId": np.where(is_lead, person_ids, None), "ContactId": np.where(is_lead, None, person_ids),
        "Status": np.where(responded, "Responded", "Sent"), "HasResponded": responded,
        "FirstRespondedDate": _maybe(responded, plan.dates(stamps.modified)),
        "Type": np.where(is_lead, "Lead", "Contact"), "LeadOrContactId": person_ids,
        **_audit(plan, d, stamps),
    })
    return columns


def _opportunity_columns(plan: _Plan, idx: np.ndarray) -> Columns:
    """Opportunities; the first ranks are those created by converting a Lead, at its Contact's Account."""
    d = _Draws(plan, "Opportunity", idx)
    rank = plan.opportunities.rank(idx)
    stamps = _timeline(plan, d, rank >= plan.opportunities.live)
    account = plan.accounts.index(d.below("Account", max(plan.accounts.live, 1)))
    from_lead = rank < plan.conversion_opportunities
    if from_lead.any():
        contact = plan.contacts.index(rank[from_lead])
        account[from_lead] = _contact_accounts(plan, contact)
        stamps.start_at(from_lead, _contact_stamps(plan, contact).created)
    stage_i = d.below("Stage", len(_STAGES))
    stage = _STAGES[stage_i]
    closed = (stage == "Closed Won") | (stage == "Closed Lost")
    campaigns = plan.counts["Campaign"]
    columns = {
        "Id": _ids("Opportunity", idx), "AccountId": _ids("Account", account),
        "Name": _account_names(plan, account) + " - " + d.pick("Product", _PRODUCTS),
        "StageName": stage,
        "Amount": _maybe(~d.chance("NoAmount", 0.1), np.round(500 + 250_000 * d.unit("Amount") ** 2, 2)),
        "Probability": _STAGE_PROBABILITIES[stage_i],
        "CloseDate": plan.dates(stamps.created + ((14 + 180 * d.unit("CloseIn")) * DAY).astype(np.int64)),
        "Type": _maybe(d.chance("Typed", 0.8), d.pick("TypeValue", _picklist("Opportunity", "Type"))),
        "LeadSource": _maybe(d.chance("Sourced", 0.6), d.pick("Source", _picklist("Opportunity", "LeadSource"))),
        "IsClosed": closed, "IsWon": stage == "Closed Won",
        "CampaignId": _maybe(d.chance("FromCampaign", 0.2) & (campaigns > 0),
                             _ids("Campaign", d.below("Campaign", max(campaigns, 1)))),
        "OwnerId": d.pick("Owner", plan.owners),
        **_audit(plan, d, stamps),
    }
    return columns


def _task_columns(plan: _Plan, idx: np.ndarray) -> Columns:
    """Tasks about live people and, for Contacts only (as Salesforce requires), an Account, Opportunity or Campaign."""
    d = _Draws(plan, "Task", idx)
    n = len(idx)
    people = plan.live_leads + plan.live_contacts
    person = d.below("Who", max(people, 1))
    has_who = d.chance("HasWho", 0.85) & (people > 0)
    is_lead = has_who & (person < plan.live_leads)
    is_contact = has_who & ~is_lead
    who = np.empty(n, dtype=object)
    earliest = np.full(n, plan.now - HISTORY_SECONDS, dtype=np.int64)
    if is_lead.any():
        lead = plan.leads.index(person[is_lead])
        who[is_lead] = _ids("Lead", lead)
        earliest[is_lead] = _lead_stamps(plan, lead).created
    if is_contact.any():
        contact = plan.contacts.index(person[is_contact] - plan.live_leads)
        who[is_contact] = _ids("Contact", contact)
        earliest[is_contact] = _contact_stamps(plan, contact).created

    what = np.full(n, None, dtype=object)
    live = {"Account": plan.accounts.live if plan.counts["Account"] else 0,
            "Opportunity": plan.opportunities.live if plan.counts["Opportunity"] else 0,
            "Campaign": plan.counts["Campaign"]}
    targets = [(name, count) for name, count in live.items() if count]
    if targets:
        kind = d.below("WhatKind", len(targets))
        wants_what = d.chance("HasWhat", 0.5) & ~is_lead
        for k, (name, count) in enumerate(targets):
            chosen = wants_what & (kind == k)
            number = d.below(f"What{name}", count)[chosen]
            shuffle = {"Account": plan.accounts, "Opportunity": plan.opportunities}.get(name)
            what[chosen] = _ids(name, shuffle.index(number) if shuffle else number)

    stamps = _timeline(plan, d, d.chance("Deleted", DELETED_SHARE), earliest)
    subject_i = d.below("Subject", len(_TASK_SUBJECTS))
    status = d.pick("Status", _picklist("Task", "Status"))
    closed = status == "Completed"
    columns = {
        "Id": _ids("Task", idx), "WhoId": who, "WhatId": what, "Subject": _TASK_SUBJECTS[subject_i],
        "ActivityDate": _maybe(d.chance("Due", 0.8),
                               plan.dates(stamps.created + ((-5 + 40 * d.unit("DueIn")) * DAY).astype(np.int64))),
        "Status": status, "Priority": d.pick("Priority", _picklist("Task", "Priority")),
        "OwnerId": d.pick("Owner", plan.owners),
        "Description": _maybe(d.chance("Described", 0.3), d.pick("Description", _DESCRIPTIONS)),
        "IsClosed": closed, "TaskSubtype": _TASK_SUBTYPE_BY_SUBJECT[subject_i],
        "CompletedDateTime": _maybe(closed, _between(d, "CompletedAt", stamps.created, stamps.modified) * 1000),
        **_audit(plan, d, stamps, views=False),
    }
    return columns
