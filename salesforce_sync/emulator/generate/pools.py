"""Static value pools: names by locale, companies, titles, descriptions, places, users; phone numbers and
addresses drawn once per seed."""

from __future__ import annotations

import functools
import itertools
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from salesforce_sync.emulator.generate.draws import Draws, object_array
from salesforce_sync.emulator.schema import STANDARD_OBJECTS

OBJECTS = {o.name: o for o in STANDARD_OBJECTS}


def ascii_fold(text: str) -> str:
    """A lower-case ASCII form of a Latin-script name for email local parts: 'Sørensen' -> 'sorensen'."""
    special = str.maketrans({"ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ł": "l", "Ł": "L",
                             "ı": "i", "đ": "d", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th"})
    folded = unicodedata.normalize("NFKD", text.translate(special))
    return "".join(c for c in folded.lower() if c.isascii() and (c.isalnum() or c == "-"))


def parse_names(text: str) -> list[tuple[str, str]]:
    """'Søren Zoë' or '伟:wei 芳:fang' -> [(display, ascii), ...]; space separates, '_' stands for a space."""
    out = []
    for item in text.split():
        display, _, ascii_form = item.partition(":")
        display = display.replace("_", " ")
        out.append((display, ascii_form or ascii_fold(display.replace(" ", ""))))
    return out


LOCALES: dict[str, tuple[float, str, str]] = {
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
LOCALE_NAMES = tuple(LOCALES)
LOCALE_CUMULATIVE = np.cumsum([share for share, _, _ in LOCALES.values()]) / sum(s for s, _, _ in LOCALES.values())
PREFERRED_LANGUAGE = np.array([{"en": "English", "fr": "French", "de": "German", "ja": "Japanese",
                                 "es": "Spanish"}.get(name) for name in LOCALE_NAMES], dtype=object)


@dataclass(frozen=True)
class Grouped:
    """Parallel value arrays grouped by locale, so a per-record locale selects within its own group."""

    columns: dict[str, np.ndarray]
    offsets: np.ndarray
    sizes: np.ndarray

    @classmethod
    def build(cls, groups: Sequence[Sequence[tuple[Any, ...]]], names: Sequence[str]) -> Grouped:
        sizes = np.array([len(g) for g in groups], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        rows = [row for group in groups for row in group]
        columns = {name: object_array(*(row[i] for row in rows)) for i, name in enumerate(names)}
        return cls(columns, offsets, sizes)

    def choose(self, draws: Draws, name: str, locale: np.ndarray) -> np.ndarray:
        return self.offsets[locale] + draws.below(name, self.sizes[locale])


def with_caps(pairs: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    return [(display, ascii_form, ascii_form.capitalize(), display + " ") for display, ascii_form in pairs]


NAME_COLUMNS = ("name", "ascii", "caps", "name_")
FIRST = Grouped.build([with_caps(parse_names(first)) for _, first, _ in LOCALES.values()], NAME_COLUMNS)
# Email local-part prefixes per first name; column 2 * style + capitalised, styles 'ann.', 'ann', 'ann_', 'a'.
FIRST_LOCAL_PARTS = np.array(
    [[form for style in (".", "", "_", None) for form in
      ((lower + style, caps + style) if style is not None else (lower[:1], caps[:1]))]
     for lower, caps in zip(FIRST.columns["ascii"], FIRST.columns["caps"])], dtype=object)
LAST = Grouped.build([with_caps(parse_names(last)) for _, _, last in LOCALES.values()], NAME_COLUMNS)


@functools.cache
def picklist_values(object_name: str, field_name: str) -> np.ndarray:
    """The field's picklist values from the schema, so generated values are always valid ones."""
    return object_array(*OBJECTS[object_name].field(field_name).picklist)  # type: ignore[union-attr]


FREE_MAIL = object_array("example.com", "example.org", "example.net", "mail.example.com", "post.example",
                      "inbox.example", "web.example", "correo.example", "posteo.example")
EMAIL_SUFFIXES = object_array(*([""] * 500), *(str(n) for n in range(1, 400)), *(str(y) for y in range(1950, 2010)))
TITLES = object_array(
    "CEO", "CTO", "VP of Marketing", "Marketing Manager", "Head of Growth", "Software Engineer",
    "Sales Director", "Account Executive", "Office Manager", "Directeur Commercial", "Responsable Marketing",
    "Geschäftsführer", "Leiter Vertrieb", "Director de Marketing", "営業部長", "マーケティング担当", "市场总监",
    "Менеджер по продажам", "مدير التسويق", "Διευθυντής Πωλήσεων", "R&D Lead", "Sales & Operations",
    "Founder/CEO", "Sr. Manager, Demand Gen", 'Chief "Happiness" Officer', "N/A",
)
DEPARTMENTS = object_array("Marketing", "Sales", "R&D", "Finance", "IT", "Operations", "Einkauf", "Ventes",
                        "営業部", "Customer Success", "Legal & Compliance")
DESCRIPTIONS = object_array(
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
COMPANIES = [
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
COMPANY_NAMES = object_array(*(name + suffix for name, _, suffixes in COMPANIES for suffix in suffixes.split("|")))
COMPANY_SLUGS = object_array(*(slug for _, slug, suffixes in COMPANIES for _ in suffixes.split("|")))
COMPANY_DOMAINS = object_array(*(slug + ".example" for _, slug, _ in COMPANIES))
# The same domain as people type it: with or without scheme, www. and a trailing path.
WEBSITE_FORMS = (("https://www.", ".example"), ("http://", ".example/"), ("", ".example"), ("www.", ".example"),
                 ("https://", ".example/contact-us"), ("HTTP://WWW.", ".example"))
REGIONS = object_array(" (EMEA)", " - Deutschland", " APAC", " France", " US West", " (Holding)")
NOT_PROVIDED = "[not provided]"
BOUNCE_REASON = "550 5.1.1 The email account that you tried to reach does not exist."
INTERESTS = object_array(*(";".join(combo) for size in (1, 2, 3)
                        for combo in itertools.combinations(picklist_values("Lead", "Interests__c"), size)))
PRODUCTS = object_array("Analytics Suite", "Annual Renewal", "Expansion - 50 seats", "Pilot (Q3)",
                     "Premium Support", "Platform licences, 3 years", "Onboarding & Training")
CAMPAIGN_THEMES = object_array(
    "Spring Webinar: Analytics", "Dreamforce Booth", "Newsletter - Mai", "Salon Lyon, Édition d'été",
    "東京セミナー", "Вебинар по CRM", 'The "Big" Launch', "Partner, Referral & Co.", "Q4 Nurture",
    "Trade Show München", "Customer Advisory Board", "Black Friday Email Blast",
)
TASK_SUBJECTS = object_array("Call", "Email", "Send Letter", "Send Quote", "Other", 'Email: Re: "pricing", urgent',
                          "Follow-up call\nleft voicemail", "Rückruf vereinbaren")
TASK_SUBTYPE_BY_SUBJECT = object_array("Call", "Email", "Task", "Task", "Task", "Email", "Call", "Call")


# Cities by locale: (city, state, country, postal pattern: '#' digit, 'L' letter); and street names.
PLACES: dict[str, tuple[list[tuple[str, str | None, str, str]], list[str], bool]] = {
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
SECOND_LINES = ("Suite 200\n", "Apt. 4B\n", "c/o Accounts Payable\n", "Bâtiment B\r\n", "2. OG\n", "Floor 3, Unit 12\n")

USERS = (
    # first, last, username and email local part, alias, time zone, locale, language, title, active
    ("Integration", "User", "integration", "integ", "America/Los_Angeles", "en_US", "en_US", None, True),
    ("Ada", "Admin", "admin", "aadmin", "America/New_York", "en_US", "en_US", "Salesforce Administrator", True),
    ("Zoë", "Ødegård", "zoe.odegard", "zodeg", "Europe/London", "en_GB", "en_US", "Account Executive", True),
    ("José", "Muñoz", "jose.munoz", "jmuno", "America/New_York", "es_ES", "es", "Sales Director", True),
    ("さくら", "佐藤", "sakura.sato", "ssato", "Asia/Tokyo", "ja_JP", "ja", "営業部長", True),
    ("Seán", "O'Brien", "sean.obrien", "sobri", "Europe/London", "en_GB", "en_US", "Account Executive", False),
    ("Amélie", "Lefèvre", "amelie.lefevre", "alefe", "Europe/Paris", "fr_FR", "fr", "Responsable Marketing", True),
)


def fill_pattern(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randrange(10)) if c == "#" else rng.choice("ABCDEFGHJKLMNPRSTUVWXY") if c == "L" else c
                   for c in pattern)


def phone_pool(rng: random.Random, size: int) -> np.ndarray:
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
    return object_array(*(rng.choice(formats)(rng.choice(area_codes), digits(2)) for _ in range(size)))


def address_pool(rng: random.Random) -> Grouped:
    """Per-locale (street, city, state, postal code, country) rows; some streets span two lines."""
    groups = []
    for locale in LOCALE_NAMES:
        places, streets, number_first = PLACES[locale]
        group = []
        for _ in range(40):
            city, state, country, postal = rng.choice(places)
            street, number = rng.choice(streets), rng.randrange(1, 400)
            line = f"{number} {street}" if number_first else f"{street} {number}"
            if rng.random() < 0.15:
                line = rng.choice(SECOND_LINES) + line
            group.append((line, city, state, fill_pattern(rng, postal) or None, country))
        groups.append(group)
    return Grouped.build(groups, ("street", "city", "state", "postal", "country"))

