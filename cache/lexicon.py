"""The words the near-miss guards (cache.guards) know: negations, opposites, numbers, dates,
places and platforms, audiences, question words. Data, not logic: extend a list, then run
``tiergate eval cache`` on the trap sets to see what it changes.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


NEGATIONS = _words(
    "not no never none nothing nobody nowhere neither nor without cannot unable dont doesnt "
    "didnt isnt arent wasnt werent wont wouldnt cant couldnt shouldnt hasnt havent hadnt aint"
)
ANTONYM_TEXT = (
    "enable disable|increase decrease reduce lower|best worst|most least|more less fewer|pro con|"
    "advantage disadvantage drawback|benefit risk|before after|first last|start stop end finish|"
    "begin end|open close|allow block deny prevent forbid|add remove delete subtract|buy sell|"
    "import export|upload download|input output|send receive|win lose|gain lose|raise lower|"
    "hot cold|warm cool|wet dry|early late|young old|new old used|long short|high low|rich poor|"
    "strong weak|positive negative|accept reject decline|include exclude|encrypt decrypt|"
    "connect disconnect|subscribe unsubscribe|good bad|better worse|easy hard difficult|"
    "safe dangerous unsafe|true false|legal illegal|cheap expensive|fast slow|big small little|"
    "large small|heavy light|maximum minimum|max min|male female|men women|man woman|boy girl|"
    "husband wife|mother father|mom dad|son daughter|brother sister|push pull|above below|"
    "over under|inside outside|upstairs downstairs|upper lower|top bottom|inner outer|love hate|"
    "like dislike|up down|left right|north south|east west|always never sometimes|all some|"
    "private public|log_in log_out|sign_in sign_out|opt_in opt_out|check_in check_out|"
    "turn_on turn_off|switch_on switch_off|speed_up slow_down|scale_up scale_down|"
    "zoom_in zoom_out|power_on power_off|warm_up cool_down|sunrise sunset|arrival departure|"
    "debit credit|asset liability|profit loss|income expense|borrow lend|teach learn|give take|"
    "ascending descending|multiply divide|plus minus|entry exit|pass fail|cause prevent|"
    "bright dark dim|light dark|expand collapse|strength weakness|show hide|rise fall|"
    "attach detach|fill empty|full empty|thick thin|wide narrow|deep shallow|loud quiet|"
    "clean dirty|success failure|right wrong|approve reject|friend enemy|hire fire|"
    "promote demote|inbound outbound|incoming outgoing|upstream downstream|uppercase lowercase|"
    "horizontal vertical|internal external|online offline|sync async|static dynamic|"
    "freeze thaw melt|heat cool|arrive leave depart|join quit leave|"
    # fifth session, after a red-team pass: directions, quantifiers, roles, more opposites
    "to from|into out|any all|much little|within after beyond|front behind|ahead behind|"
    "allow allowed permit permitted block deny prevent forbid prohibit prohibited ban banned|"
    "mandatory required compulsory recommended optional voluntary|inhale exhale|ingress egress|"
    "inflow outflow|landlord tenant|employer employee|plaintiff defendant|host guest|"
    "doctor patient|driver passenger rider|seller buyer|sender recipient|parent child|"
    "owner renter|lender borrower|creditor debtor|author reader|on off|forget forgot remember|"
    # ... and after a second red-team pass: frequencies, times of day, conditions, modality,
    # coverage, severity
    "hourly daily nightly weekly biweekly monthly quarterly yearly annual annually|am pm|"
    "daytime nighttime|if unless|until after|cover exclude|encode decode|inpatient outpatient|"
    "in-network out-of-network|mild moderate severe|soft hard|both either neither|half whole|"
    "single several multiple few"
)
# Prepositions that send the same word opposite ways: "travel to the UK" / "travel from the UK"
# ("out of" is compared by its "of"; cache.guards.order).
OPPOSITE_PREPS = [frozenset({"to", "from"}), frozenset({"into", "of"}), frozenset({"onto", "off"})]
# Opposite prefixes on the same stem: "overweight" / "underweight", "hyperglycemia" / "hypo..."
OPPOSITE_PREFIXES = (("over", "under"), ("hyper", "hypo"), ("pre", "post"), ("inter", "intra"))
# Persons as the swap check compares them (cache.guards.order): every case of one person is one.
PERSONS = {"me": "i", "my": "i", "mine": "i", "myself": "i", "us": "we", "our": "we"}
PERSONS |= {"ours": "we", "him": "he", "his": "he", "her": "she", "hers": "she", "them": "they"}
PERSONS |= {"their": "they", "theirs": "they", "i": "i", "we": "we", "he": "he", "she": "she"}
PERSONS |= {"they": "they", "you": "you", "your": "you", "yours": "you"}
PERSON_FORMS = frozenset(PERSONS.values())  # i, we, he, she, they, you
ANTONYMS = [_words(group) for group in ANTONYM_TEXT.split("|")]
PHRASES = re.compile(
    r"\b(log|sign|opt|check|turn|switch|speed|slow|scale|zoom|power|shut|calm|cool|warm)"
    r"\s+(in|out|on|off|up|down)\b"
)
NEGATING_PREFIXES = ("un", "dis", "non", "de", "in", "im", "il", "ir", "anti")
_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
_TEENS = "fifteen sixteen seventeen eighteen nineteen"
NUMBER_WORDS = {w: i for i, w in enumerate(f"{_UNITS} {_TEENS}".split())} | {
    w: 10 * (i + 2)
    for i, w in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    )
}
NUMBER_WORDS |= {"once": 1, "twice": 2, "thrice": 3}  # "once a day" / "twice a day"
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "dozen": 12}
ORDINALS = {
    w: i + 1
    for i, w in enumerate(
        [
            "first",
            "second",
            "third",
            "fourth",
            "fifth",
            "sixth",
            "seventh",
            "eighth",
            "ninth",
            "tenth",
        ]
    )
}
ROMAN = {"II": 2, "III": 3, "IV": 4, "VI": 6, "VII": 7, "VIII": 8, "IX": 9, "XI": 11, "XII": 12}
NEGATIVE = re.compile(r"(?<![\w.])[-\u2212\u2013]\s?[$€£]?(\d[\d,]*(?:\.\d+)?)")
# Atomic: "22mg" is 22, not the "2" a backtracking match would give back to satisfy (?![a-z]).
DIGITS = re.compile(r"(?>(\d[\d,]*(?:\.\d+)?))(k|m|bn)?(?![a-z])|(\d[\d,]*(?:\.\d+)?)")
MONTHS = _words(
    "january february march april may june july august september october november december"
)
MONTH_ABBR = {m[:3]: m for m in MONTHS} | {"sept": "september"}
DAYS = _words("monday tuesday wednesday thursday friday saturday sunday weekend weekday weekdays")
RELATIVE = _words("today tonight tomorrow yesterday now morning afternoon evening noon midnight")
SEASONS = _words("spring summer autumn winter christmas easter")
PERIOD = re.compile(
    r"\b(this|next|last|past|coming|previous|current)\s+"
    r"(week|weekend|month|year|quarter|decade|century|season|semester|day|night|time)\b"
)
CURRENCIES = {"$": "usd", "€": "eur", "£": "gbp", "¥": "jpy", "₹": "inr"}
GAZETTEER_TEXT = (
    # places (countries, regions, big cities) and their adjectives
    "eu|european union=eu|europe|european=europe|asia|asian=asia|africa|african=africa|"
    "america=us|american=us|usa=us|united states=us|north america|south america|"
    "latin america|uk|united kingdom=uk|britain=uk|great britain=uk|british=uk|england|"
    "scotland|wales|ireland|irish=ireland|canada|canadian=canada|mexico|mexican=mexico|"
    "brazil|brazilian=brazil|argentina|chile|colombia|peru|france|french=france|germany|"
    "german=germany|italy|italian=italy|spain|spanish=spain|portugal|portuguese=portugal|"
    "netherlands|dutch=netherlands|belgium|switzerland|swiss=switzerland|austria|sweden|"
    "swedish=sweden|norway|denmark|finland|poland|polish=poland|russia|russian=russia|"
    "ukraine|turkey|turkish=turkey|greece|greek=greece|israel|iran|iraq|egypt|nigeria|kenya|"
    "south africa|ethiopia|morocco|india|indian=india|pakistan|bangladesh|china|"
    "chinese=china|japan|japanese=japan|korea|korean=korea|south korea|north korea|taiwan|"
    "vietnam|thailand|indonesia|malaysia|singapore|philippines|australia|"
    "australian=australia|new zealand|saudi arabia|uae|dubai|qatar|london|paris|berlin|"
    "madrid|rome|tokyo|beijing|shanghai|delhi|mumbai|bangalore|new york|nyc=new york|"
    "los angeles|san francisco|chicago|boston|seattle|texas|california|florida|toronto|"
    "sydney|hong kong|moscow|istanbul|amsterdam|lisbon|munich|"
    # platforms and stacks
    "windows|mac|macos=mac|linux|ubuntu|android|ios|"
    "aws|azure|gcp|docker|kubernetes|postgres|postgresql=postgres|mysql|sqlite|mongodb|redis|"
    "python|java|javascript|js=javascript|typescript|c++|cpp=c++|c#|csharp=c#|golang|rust|ruby|"
    "php|swift|kotlin|scala|perl|haskell|matlab|r|sql|html|css|react|angular|vue|django|"
    "flask|node|nodejs=node|pandas|numpy|pytorch|tensorflow|"
    # faiths, currencies, languages
    "christianity|islam|judaism|hinduism|buddhism|bitcoin|ethereum|dollar=usd|usd|euro=eur|"
    "eur|pound=gbp|gbp|yen=jpy|rupee=inr|english|mandarin|hindi|arabic"
)
# Names that are not a scope: "Google Chrome" and "Chrome" ask the same thing.
BRANDS_TEXT = (
    "iphone|ipad|chrome|firefox|safari|excel|word|powerpoint|outlook|gmail|whatsapp|facebook|"
    "instagram|twitter|tiktok|youtube|linkedin|reddit|amazon|google|apple|microsoft|netflix|"
    "spotify|tesla|slack|zoom|teams|jira|github|openai|chatgpt|samsung|huawei|uber|airbnb"
)
SCOPES = {
    name.strip(): (canon or name).strip()
    for item in GAZETTEER_TEXT.split("|")
    for name, _, canon in [item.partition("=")]
}
GAZETTEER = SCOPES | {name: name for name in BRANDS_TEXT.split("|")}
MULTIWORD = re.compile(
    r"\b("
    + "|".join(sorted((re.escape(n) for n in GAZETTEER if " " in n), key=len, reverse=True))
    + r")\b",
    re.IGNORECASE,
)
CASE_SENSITIVE = _words("us word r go swift rust node")  # names only when written as such
NOT_NAMES = _words("i i'm i've i'd i'll ok okay hi hello please thanks")
AUDIENCE_TEXT = (
    "children=child,children,kid,kids,toddler,toddlers|adults=adult,adults,grownups|"
    "teenagers=teen,teens,teenager,teenagers|seniors=senior,seniors,elderly,retirees,retiree|"
    "beginners=beginner,beginners,novice,novices,newbie|experts=expert,experts,advanced|"
    "students=student,students|teachers=teacher,teachers|parents=parent,parents|"
    "employees=employee,employees,staff,workers|managers=manager,managers|"
    "customers=customer,customers,clients|patients=patient,patients|doctors=doctor,doctors|"
    "women=woman,women,female,females|men=man,men,male,males|vegans=vegan,vegans|"
    "vegetarians=vegetarian,vegetarians|dogs=dog,dogs,puppy,puppies|cats=cat,cats,kitten"
)
AUDIENCES = {
    w: canon
    for group in AUDIENCE_TEXT.split("|")
    for canon, _, members in [group.partition("=")]
    for w in members.split(",")
}
SCOPE_PREPS = _words("for in on at during under without near inside outside within among per as")
IDIOMS = _words(
    "order example instance general fact all least most case addition particular short detail "
    "advance total terms regards front place touch time way use world practice reality brief"
)
DETERMINERS = _words("the a an my your our their his her its this that these those some any every")
WH = {"who": "who", "whom": "who", "whose": "who", "when": "when", "where": "where", "why": "why"}
HOW = {"many": "amount", "much": "amount", "long": "duration", "old": "age", "far": "distance"}
HOW |= {"often": "frequency", "big": "size", "tall": "size"}
TIME_UNITS = _words("time seconds minutes hours days weeks months years")
LONG_TEXT = 12  # content words; above this a text is a statement rather than a question
STOP = _words(
    "a an the is are was were be been being do does did to of and or in on at for with by from "
    "as it its this that these those i you he she we they me my your our their what which who "
    "how why when where can could should would will shall may might must there here than then "
    "so if about into out up over under any some all get got s"
)
TOKEN = re.compile(r"[$€£¥₹]|[A-Za-z0-9][A-Za-z0-9+#]*(?:[.'\u2019_/:-][A-Za-z0-9+#]+)*")
BREAKS = re.compile(r"[,;:!?()]|\b(and|or|but|because|so|if|when|while|that|which)\b")
# Chatter (cache.semantic.is_chatter): a turn that is only social talk (greetings, thanks,
# acknowledgements, small talk about the conversation itself), which no later question can
# refer to and which changes no answer, so the conversation context skips it. Whole phrases
# first, then the remaining words must all be social ones. A turn with anything else (a
# digit, a content word, a negation, "yes" / "no", another script, a question other than the
# phrases') is not chatter; neither is any reply to a question of the assistant's.
CHATTER_PHRASES = re.compile(
    r"(\b(thank you|thanks|many thanks)( (so|very) much| a lot| again)?"
    # thanks for help already given: it names no subject and asks for nothing
    r"( for (the|your|all the|all your) (help|answers?|info|information|explanation|time|tips"
    r"|advice|suggestions?)( earlier| before| yesterday| today| last time| last week)?)?"
    r"|\bgood (morning|afternoon|evening|day)|\b(hi|hello|hey) there"
    r"|\bhow are you( doing)?( today)?|\bhow('s| is) it going|\bhope you('re| are) (doing )?well"
    r"|\bhow('s| is| has| have) (your|you) (day|week|morning|evening|weekend)?( been| going)?"
    r"|\bhow have you been|\bwhat'?s up|\b(are )?you (still )?there|\bhow are things"
    r"|\b((it'?s |that'?s )?(good|nice)|glad|happy) to "
    r"(know|hear from you( again)?|hear( it| that)?)"
    r"|\bhope (you('re| are) having a (good|great|nice) (day|week)|your (day|week)('s| is) "
    r"(going|treating you) well|the (day|week)('s| is) treating you well|yours is going well)"
    r"|\b(it'?s )?going well|\bglad (it|that) help(s|ed)|\bof course"
    r"|\b(there'?s )?something i'?d like to ask( you)?|\bi'?d like to ask( you)?( something)?"
    r"|\bi('ve got| have) a question( for you)?|\bthanks for (always )?being so (patient|kind)"
    r"|\blong time no (see|chat|talk)|\b(that'?s )?kind of you( to say)?|\bsame to you"
    r"|\bnice to (meet|chat with|talk to|see) you( too| again)?"
    r"|\byou('ve| have) been (very |really |super |so )?helpful"
    r"|\b(that|this|it)('s| is| was) (very |really |super |so )?(helpful|useful)"
    r"|\bgot it|\bthat helps( a lot)?|\b(much )?appreciated|\bappreciate it"
    # the assistant's side of the same exchanges
    r"|\bhow can i (help|assist)( you)?( today)?|\bwhat can i do for you( today)?"
    r"|\bwhat would you like to know|\bwhat'?s on your mind( today)?"
    r"|\bwhat (can|could) i help (you )?with( today)?|\bthanks for asking"
    r"|\bwhat do you need( help with)?|\bwhat would you like to (ask|know)|\bask away"
    r"|\bgo ahead|\bsure thing|\b(my|it'?s my) pleasure|\bsounds good|\bthanks in advance"
    r"|\byou('| a)re (very |so )?welcome|\b(happy|glad) to help|\bglad i could help"
    r"|\bno problem|\blet me know if you have (any )?(more|other) questions"
    r"|\bfeel free to ask)\b[?!.,]*"
)
# Words a social turn may hold besides the phrases: greetings, thanks, acknowledgements
# ("great", "ok": an offer they may accept is an assistant message, which is in the scope
# unless it is chatter itself), praise, farewells and their function words. No numbers,
# negations, "yes" / "no", question words or quantities ("How much?" is a question), and
# nothing a fact or an instruction is made of.
CHATTER = _words(
    "hi hello hey hiya heya yo howdy greetings thanks thank thx ty cheers appreciate grateful "
    "ok okay great perfect cool awesome nice lovely wonderful excellent fantastic brilliant "
    "amazing sure alright gotcha noted understood clear makes sense helpful useful super "
    "really very so again just wanted say i you your it that this is was s m ve ll re me "
    "to for the a all and bye goodbye later take care see soon lol haha hehe glad happy "
    "pleasure welcome back again chat chatting talk talking meet oh ah well pretty good "
    "fine doing anytime morning afternoon evening friend lately here ask question got go "
    "explaining hope asking advance in help at too ha"
)
CHATTER_MAX_WORDS = 12
CHATTER_TOKEN = re.compile(r"\w+")
# The language the embedding model, the verifier and the guards know is English: a text whose
# function words are more often another language's than English's is not semantically cached
# (cache.semantic.make_key). Function words only, no word both languages use often.
ENGLISH_WORDS = _words(
    "the is are was were be been do does did what which who how why when where can could should "
    "would will my your our their this that these those there with from for of and or but not "
    "have has had it its about into than then if"
)
FOREIGN_WORDS = _words(
    # German
    "der die das und ist ich nicht wie was wo warum wann kann ein eine einen mit auf für von "
    "zu im ist sind mein meine dem den des oder aber "
    # Spanish, Portuguese, Italian, French
    "de la en y lo al el los las es que por para cómo qué dónde cuándo puedo una un con del se "
    "mi mis son está "
    "não como onde quando é um uma com do da dos das em meu minha "
    "il gli che è sono di per come dove quando posso della delle mio mia "
    "le les est et je ne pas comment où quand puis une avec du des au aux mon ma mes sont "
    # Dutch, Swedish, Danish, Norwegian
    "het een ik niet zijn op voor ook maar hoe wat och är att det som för på jag inte ska "
    "hur vad eller og er jeg ikke hvordan hvad skal"
)
# Words English uses too ("do", "was", "die", "son") never count as another language's.
FOREIGN_WORDS = (
    FOREIGN_WORDS
    - STOP
    - ENGLISH_WORDS
    - _words(
        "do was die son con den am an as be in is it me no of on or so to up we ma mi man will art "
        "hat war also see same mine pan pot sale fast gift kind bad hut rot rat mit come dove "
        "hoe er um com da dos del von im des et est ne el al un per"
    )
)
