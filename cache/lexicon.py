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
# How many times: only the edit check (cache.edits) reads these ("double" / "triple a recipe").
MULTIPLIERS = {"single": 1, "double": 2, "triple": 3, "quadruple": 4, "half": 0.5, "quarter": 0.25}
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
# Chatter (cache.chatter.is_chatter): a turn that is only social talk (greetings, thanks,
# acknowledgements, small talk about the conversation itself), which no later question can
# refer to and which changes no answer, so the conversation context skips it. Whole phrases
# first, then the remaining words must all be social ones. A turn with anything else (a
# digit, a content word, a negation, "yes" / "no", another script, a question other than the
# phrases') is not chatter; neither is any reply to a question of the assistant's.
_WELL = r"(well|good|great|fine|ok|okay|alright|all right|smoothly|nicely|kindly|better)"
_NICE = r"(good|nice|great|lovely|pleasant|wonderful|chill|relaxing|gr8|fab|brilliant)"
_DAYS = r"(day|week|weekend|morning|afternoon|evening|night|one)"
# Alternatives are tried in order at each position: longer phrases before the ones they start
# with ("thanks for being so patient" before "thanks").
CHATTER_PHRASE_LIST = (
    # more greetings, wishes and thanks, each a whole phrase (no word of them is social alone)
    r"(thanks|thank you|cheers) in advance( for (the|your) help)?|thank you kindly"
    r"|(thanks|cheers) for (taking the time|being (here|around|awesome|so patient)"
    r"( with (me|all my questions))?)|you'?re always so helpful|just wanted to say hi( first)?"
    r"|sending good vibes( your way)?|(trust|hope) (you'?re|you are) doing well"
    r"|hope this finds you well|how are you holding up( today)?",
    r"hope (everything'?s|everything is|all'?s|all is|life'?s|life is) (good|well|treating you "
    r"(well|kindly))( with you)?",
    r"hope (your|the) (week|weekend|day|evening|morning)('s| has| is)? (been )?(good|great|well"
    r"|nice|nicely|treated you well|going (well|nicely|great)|off to a (good|great) start)"
    r"( so far)?|hope you'?ve had a (good|great|nice) (morning|day|week)( so far)?"
    r"|hope you'?re having a (fab|great|good|nice|lovely) (day|start to the day)",
    r"that clears (things|it) up|that makes (a lot of |total )?sense|(that'?s )?(helpful|good"
    r"|useful) to know|i appreciate the detail|that'?s great,? thanks for explaining",
    # thanks, also for help already given: it names no subject and asks for nothing
    r"thanks for (always )?being so (patient|kind|helpful)( with (me|all my questions))?",
    r"(thank you|thank u|thanks|many thanks|thx|ty)( (so|very) much| a lot| a bunch| again)?"
    r"( for (the|your|all the|all your|all my|the quick|your quick) (help|answers?|info"
    r"|information|explanation|time|tips|advice|suggestions?|questions)"
    r"( earlier| before| yesterday| today| last time| last week| the other day| lately)?)?",
    r"(thanks|thank you) (again )?for last time",
    r"good (morning|afternoon|evening|day)( to (you|ya))?|^(morning|evening|afternoon|mornin'?)\b"
    r"|(hi|hello|hey|thanks|thank you|cheers)( there)?,? (friend|buddy|pal|bro|dude)"
    r"|(good|nice|great) to (see you|be back)( again)?|well,? hello|^right,? (ok|okay)\b"
    r"|i trust this (message )?finds you well|(greetings|salutations)( and salutations)?",
    r"(hi|hello|hey) (there|friend|everyone|all|guys|folks|mate)",
    r"(hi|hello|hey|morning) (assistant|bot|chatbot)|(hi|hello|hey) again,? it'?s me",
    # wishes that tell the day or the date: chatter only when nothing asked depends on it
    r"happy (monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekend|new year"
    r"|holidays|hump day)( to you( too)?)?",
    rf"(have|enjoy) (a|your) (good|nice|great|lovely) {_DAYS}",
    # small talk about the conversation itself
    r"how (are|r) (you|u|ya)( doing)?( today)?",
    r"how('s|s| is) (it going|everything|things|life)",
    r"thanks for (explaining|clarifying|walking me through (that|it|this)|the (detailed|quick"
    r"|clear|great) (answer|explanation|reply))",
    rf"how('s|s| is| has| have) (your|ur|you)( {_DAYS})?( been| going)?",
    r"how have you been|what'?s up"
    r"|(are )?(you|anyone) (still )?(there|around)|how are things|you alright",
    r"just checking in",
    # "hope you're well", "hope your day is going smoothly", "hope all's good": a wish about
    # the other's day, from a closed set of words (no room for a fact)
    r"hope (that )?((you|u|ya|you're|youre|ur|your|yours|all|all's|things|everything"
    r"|everything's|it|it's|its|is|are|doing|going|been|had|having|day|day's|week|week's|treats"
    r"|weekend|morning|evening|on|end|with|too|the|today|so|far|off|to|treating|slept|has"
    r"|have|was|went) ){0,8}"
    rf"(a {_NICE} {_DAYS}( so far)?|a good start|well rested|treating you (well|kindly)"
    r"|keeping well"
    rf"|{_WELL}( than mine| too| to you| on your end)?)",
    r"((it'?s |that'?s )?(good|nice)|glad|happy) to (know|hear from you( again)?|hear( it| that)?)",
    r"(it'?s )?going (well|great|good)|glad (it|that) help(s|ed)",
    r"(there'?s )?something i'?d like to ask( you)?|i'?d like to ask( you)?( something)?",
    r"i('ve got| have) a question( for you)?",
    r"long time no (see|chat|talk)|(that'?s )?kind of you( to say)?|same to you",
    r"nice to (meet|chat with|talk to|see) you( too| again)?",
    r"you('ve| have) been (very |really |super |so )?helpful( lately)?",
    r"(you're|youre|ur|you are) the best",
    r"(that|this|it)('s| is| was) (very |really |super |so )?(helpful|useful|clear)",
    r"got it|that helps( a lot| a ton)?|(much )?appreciated|appreciate (it|the quick answer)"
    r"|makes (total |perfect )?sense",
    r"no worries|my bad for the wait",
    # apologies for the conversation itself, farewells, compliments, preambles
    r"(sorry|sry|soz|apologies|my bad)( for| about)? (the |my )?(delay|late reply|wait|being slow"
    r"|all the questions)|(sorry|sry|my bad),? (i )?(was afk|was away|got distracted"
    r"|stepped away( for a (minute|sec|bit))?)|(i'm |sorry,? )?back now|i'm back|pardon the wait",
    r"gotta go|ttyl|cya|peace out|catch you later|that'?s all for now|i'?m done|signing off"
    r"|see you (around|later|soon|next time)|bye for now|good luck|take care|cheerio|farewell",
    r"(great|excellent|perfect|amazing|awesome|brilliant) (answer|response|explanation)( truly)?"
    r"|you('re| are) (a |so |such a )?(genius|lifesaver|star|legend|smart|amazing|awesome|fast"
    r"|too kind)|you rock|nailed it|best bot ever|love how clear that was"
    r"|you explain things (really |so )?well|that means a lot|appreciate the kind words"
    r"|glad (that|it) landed",
    r"quick question|(can|may) i ask (you )?(something|a question)|mind if i ask( you)?"
    r"( something)?|got a (sec|second|minute)|(i )?need (some|your|ur) help( rq)?"
    r"|one more (thing|question)|another (one|question)|here goes|i('ve| have) got another "
    r"question|can you help me( with something)?",
    # acknowledgements that judge the answer, preambles and apologies with more words
    r"that('s| is)? (clears it up|makes sense)|i'?ll remember that|nice one",
    r"(mind if i |can i )?pick your brain|(just )?(a )?(quick|random|small) (one|question)"
    r"( if that'?s (alright|ok|okay))?|(ok |okay )?so,? random one|here we go"
    r"|i('ve| have) (got )?(something|a (bit of a )?(random |quick )?question)"
    r"( i'?ve been wondering about| for you)?|i hope this isn'?t a (silly|dumb|stupid) question"
    r"|hope i'?m not bothering you|apologies in advance if i ramble( a bit)?"
    r"|thanks for (making|taking) (the )?time( for this)?|thanks for always being (around|there)",
    r"sorry (for disappearing|it took me so long|(about|for) the slow reply)"
    r"( to get back to (this|you))?( earlier)?|things got hectic|got pulled into something"
    r"|long day|love (this tool|how clear your explanations are)( by the way)?",
    r"been a while|did you miss me|(are )?you awake|do you ever sleep|anyone home"
    r"|how'?ve you been",
    # the assistant's side of the same exchanges
    r"how can i (help|assist)( you)?( today)?|what can i do for you( today)?",
    r"what would you like to (ask|know)|what'?s on your mind( today)?",
    r"what (can|could) i help (you )?with( today)?|thanks for (asking|checking in)",
    r"ask away( anytime)?|(my|it'?s my) pleasure",
    r"you('| a)re (very |so )?welcome|(always )?(happy|glad) to (help|chat)"
    r"( again)?|glad i could help|no problem( at all)?|glad you stopped by|welcome back",
    r"let me know if (you have (any )?(more|other) questions|anything('s| is) unclear"
    r"|you need anything else|anything else comes up)|feel free to ask",
    r"hope (you'?re|you are) off to a (good|great|nice|lovely) start",
    r"not a bother( at all)?|never too busy|take your time|sorry to hear that",
    r"hope it (turns around|gets better)|(i'm|i am) doing (well|good|great|fine)"
    r"|hope you (are|did|do) too|(and )?you too",
)
# An assistant's social replies only: from a user, "Go ahead", "Sounds good" and "Not at all"
# answer something, and "What is it?" asks.
CHATTER_ASSISTANT_PHRASE_LIST = (
    r"it'?s going (great|well|good),? thanks for asking|(i am|i'?m|i have|it has|it is|it did"
    r"|i'?ve been well),? thanks?( you)?|thanks,? (it did|it is|you too)|things are good,? thanks"
    r"|everything'?s good,? thanks|love the energy|what are we tackling|always happy to help"
    r"|happy to (share|hear it|be here)|glad it (clicked|helped)|right back at you"
    r"|that'?s (nice|kind|sweet) of you( to say)?|you'?re welcome in advance|it'?s a pleasure"
    r"|lovely to chat with you( too)?|not much,? (just )?(here|ready) to help"
    r"|how can i help tonight|what can i do today",
    r"what do you need( help with)?|what'?s (new|happening|cracking|going on|good)( with you)?"
    r"|how about you",
    r"glad (the detail|that|it|i could) (helped|helps|help|clear that up)|glad to walk you "
    r"through it|glad you found it (useful|helpful)|any ?time( at all)?|sounds like you were "
    r"on the right track|what'?s on the agenda|(things are|all) good( here)?|(i'?m )?doing "
    r"(well|great|good),? thank you|i am,? thank you|(i'?m )?(just )?here to help|i'?m here"
    r"|hello,? friend|and a good day to you( too)?|great to hear from you( again)?|you bet"
    r"|sure thing|my pleasure,? truly|ahoy there|not much|pretty good",
    r"what'?s (your|the) question|ask me anything|fire away|i'?m all ears|whenever you'?re ready"
    r"|(that'?s|it'?s) (great|good) to hear|what'?s (next|the next one|up now)"
    r"|pick away|no question is (silly|dumb|stupid)|where would you like to start"
    r"|let'?s (hear it|get into it|get started|do it)|ready when you are"
    r"|glad (you'?re enjoying it|it'?s clearer( now)?|it sounds (reasonable|good))"
    r"|what else can i do( for you)?|random is fine|what is it|it'?s a handy one to know"
    r"|(you're )?most welcome|no prob|happy to explain|(glad|happy) (that|it) (clears it up|does)"
    r"|likewise|thanks for being here"
    r"|what are we working on|what brings you here( today)?|how may i (help|assist)( you)?"
    r"|how can i be of (service|help)|no need to apologi[sz]e|no apology needed"
    r"|no rush( at all)?|not a problem|take all the time you need|go ahead|sounds good"
    rf"|enjoy (the rest of )?your {_DAYS}|come back (whenever|anytime)|(yes,? |yep,? )?"
    r"(i'?m )?still here|i'?ll be here|totally fine|happy to be of help( anytime)?",
    # seventh session: the assistant's greetings, on its side only
    r"what can i (help|assist) (you )?with( today)?|(i'?m )?doing (well|great|good|fine),? "
    r"(thanks|thank you)( for asking)?|thanks for asking|(a )?good day to you( too)?"
    r"|yes,? i'?m here|for asking|to you too",
    # eighth session
    r"not at all|glad to have you( back| here)?|(great|good|nice) to hear( that)?"
    r"|glad to be of (help|service)|ask away|(sure,? )?i'?ll be (right )?here|oh no"
    r"|glad (it'?s|it is) (helpful|useful)|glad i can help|no worries( at all)?",
)


def _phrases(alternatives: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(alternatives) + r")\b[?!.,]*")


CHATTER_PHRASES = _phrases(CHATTER_PHRASE_LIST)
CHATTER_ASSISTANT_PHRASES = _phrases(CHATTER_PHRASE_LIST + CHATTER_ASSISTANT_PHRASE_LIST)
# Every word a phrase can hold: a turn with any other word (after CHATTER) cannot be chatter,
# which rejects most turns before the phrases' regex runs.
CHATTER_PHRASE_WORDS = frozenset(
    re.findall(
        r"[a-z0-9]+",
        " ".join(CHATTER_PHRASE_LIST + CHATTER_ASSISTANT_PHRASE_LIST).replace("[sz]", ""),
    )
) | {"apologize", "apologise"}
# Words a social turn may hold besides the phrases: greetings, thanks, acknowledgements
# ("great", "ok": after an assistant's question or offer nothing is chatter), praise,
# farewells and their function words, contractions whole ("i'm", not "i" and "m"). Not here,
# after a red-team pass: letters alone ("A is fine", "M for me", "U.K."), "yes"-words
# ("sure", "absolutely", "of course"), negations, numbers, words that make an instruction
# or a fact out of social words ("say it in kind words", "it's for a friend", "I'm here with
# friends", "It's morning here", "me too"), greetings that name a place, a language or a date
# ("g'day", "bonjour", "happy Friday": "Are banks open today?" depends on them).
CHATTER = _words(
    "hi hello hey hiya heya yo greetings thanks thank thx ty tysm cheers appreciate grateful "
    "ok okay kk great perfect cool awesome nice lovely wonderful excellent fantastic brilliant "
    "amazing alright gotcha noted understood clear makes sense helpful useful really very so "
    "again wanted i i'm im you your it it's that that's thats this is was to for the and bye "
    "goodbye see lol lmao haha hehe glad pleasure welcome chat chatting talk talking meet oh "
    "ah ahh aw pretty ask question hope help interesting np u ur ta heaps ton obliged "
    "bro dude hmm wow omg um seriously you're youre i've ive let's sup ahoy howdy hallo"
)
# After the assistant said something, only these: thanks and "I understand".
ACKNOWLEDGEMENT = _words(
    "thanks thank thx ty tysm cheers appreciate appreciated grateful noted understood gotcha "
    "clear helpful useful interesting makes sense again much lot you very so really lifesaver "
    "star legend"
    # ... and a term of address beside the thanks ("perfect thanks man", "thank you my
    # friend", "thx bro"; eleventh session): it names the assistant, nothing of the user's
    " friend man mate buddy pal bro dude fam boss chief coach sir my"
)
# ... and, after an answer that proposes nothing, these beside a thanks ("Perfect, thanks!");
# never a stance ("hmm", "wow", "seriously", "lol", "omg"), never alone.
ACKNOWLEDGEMENT_PRAISE = _words(
    "great perfect awesome cool nice lovely wonderful excellent fantastic brilliant amazing ok "
    "okay alright oh ah ahh ohh ooh neat sweet super explanation wow k kk right"
)
ACKNOWLEDGEMENT_PHRASES = re.compile(
    r"\b((thank you|thanks|many thanks|thx|ty|tysm|cheers|ta)( (so|very) much| a lot| a bunch"
    r"| again| mate)?( for (the|your|all the|all your) (help|answers?|info|information"
    r"|explanation|time|tips|advice|detail))?|got it|that helps( a lot| a ton)?"
    r"|(very |really |how )?interesting|i (didn'?t|did not) know that|(that'?s |it'?s )?(exactly "
    r"|just )?what i needed|(that|this|it)('s| is| was) "
    r"(very |really |super |so )?(helpful|useful|clear)|makes (total |perfect )?sense"
    r"|that (clears (things|it) up|makes (a lot of |total )?sense)|(that'?s )?(helpful|good"
    r"|useful) to know|i'?ll remember that|(much )?appreciated"
    r"|appreciate (it|the (detail|help|info|tips?|(quick )?(answer|reply|response)))"
    r"|noted|understood|gotcha)\b[?!.,]*"
)
# More ways to say thanks ("thank u", "thanks a ton", "thanks for breaking it down"); and,
# only beside one and after an answer that proposes nothing, praise for the help or the
# helper ("you're a lifesaver", "great tip"). Never "great idea" or "that's a relief": they
# accept a proposal or pick a branch of the answer (a red-team pass, eighth session).
ACKNOWLEDGEMENT_THANKS = re.compile(
    r"\b((thank u|thanks a ton|thanks heaps|thanks so much|thank you so much)"
    r"|(thanks|thank you|thx) for (explaining|clarifying|breaking it down|the (tip|tips|trick"
    r"|explanation|breakdown|rundown|walkthrough)))\b[?!.,]*"
)
ACKNOWLEDGEMENT_PRAISE_PHRASES = re.compile(
    r"\b((you'?re|you are) (a|such a|the) (lifesaver|life saver|star|legend|gem|hero|champ"
    r"|genius)|(that'?s |that was |what )?(a |such a )?(great|good|nice|neat|handy|clever"
    r"|perfect|clear|helpful|useful|smart) (tip|tips|trick|explanation|answer|breakdown|info"
    r"|information|advice)|nice one)\b[?!.,]*"
)
# Asides that pause or resume the conversation, or praise how the assistant talks rather than
# what it said: after an answer that proposes nothing they pass over like a thanks
# (cache.chatter). Their reasons are a closed list: "one sec, I'm vegan" is a fact.
PAUSES = (
    r"(brb|be right back|(one|a|1) (sec|second|moment|min|minute)|hang on|hold on|give me a "
    r"(sec|second|minute|moment)|(sorry,? )?(i )?got distracted( for a (sec|second|minute|bit))?"
    r"|(sorry,? )?i'?m back( now)?|back now|(sorry|apologies) (for|about) (the|my) (wait|delay"
    r"|slow (reply|replies|response|responses))|sorry,? had to step away( for a (sec|bit|minute))?)"
    r"(,? (my )?phone'?s ringing|,? someone'?s at the door|,? had to grab something|,? busy day)?"
)
COMPLIMENTS = (
    r"(omg |honestly |wow,? )?i love how (fast|quick|quickly|clear|clearly|patient) you (are"
    r"|reply|respond|explain( things)?)|(you'?re|you are) (way |so |much |really )?(more )?"
    r"(helpful|useful) than (the )?(forums|google|reddit|stack overflow|search engines)"
)
ASIDES = re.compile(rf"\b({PAUSES}|{COMPLIMENTS})\b[?!.,]*")
# While the assistant's question waits, only a pause: praise may answer it ("Was that the
# right level?" / "I love how clearly you explain things").
PAUSE_ASIDES = re.compile(rf"\b({PAUSES})\b[?!.,]*")
# The assistant's good wishes closing a social reply: they accept, choose or state nothing
# ("Good luck with it!", "Hope it perks up!", "Enjoy!", "Feel better soon."). No noun of
# theirs: "Hope your son feels better" / "your pup" assume what the answer did not say.
WELL_WISHES = re.compile(
    r"\b((good luck|best of luck|fingers crossed)( with (it|that|this|them|everything))?"
    r"|(i )?hope (it|that|this|they|things|everything|you) "
    r"((goes|go|went) (well|smoothly|great|okay|ok)|(works|work) out( well)?"
    r"|(feels|feel|get|gets|are|is) (better|well|okay|ok)( soon)?"
    r"|(get|gets) (it |things )?(sorted|fixed|resolved)( soon)?"
    r"|(perks|perk|starts|start|picks|pick|clears) (right )?up"
    r"|(turns|turn|comes|come) out (well|great|perfect|nicely)|(helps|helped)( a bit)?)"
    r"|feel better( soon)?|get well soon|rest up|sleep (well|tight)|drive safe(ly)?"
    r"|travel safe(ly)?|safe travels|stay (safe|dry|warm|cool)|hang in there"
    r"|you'?ve got this|you got this|have fun( with (it|them|that))?|enjoy( (it|them|that))?"
    r"|(ha|haha),? )\b[!.,]*"
)
# Words in a user turn that make the answer depend on when it is asked ("Happy New Year!"
# before "Is the post office open today?"): then a conversation opened with a greeting that
# tells the time is not answered from the same conversation without it (cache.chatter.
# asks_about_time): the present moment, dates, opening hours, meals, the weather, what to eat
# or wear now, whether to do something now ("Should I have an espresso?", "Can I call them?"),
# drinks and sleep; not "when" or "a week" in general ("When should I plant tomatoes?").
TIME_SENSITIVE = re.compile(
    r"\b(today|today's|tonight|tonight's|tomorrow|tomorrow's|yesterday|now|currently|right now"
    r"|at the moment|this (morning|afternoon|evening|week|weekend|time|month|year)|(too|so|this"
    r"|that) (late|early)|what time|(what|which) (day|date)|business days?|(next|last) (week"
    r"|month|year|day)|date|open|opens|opened|opening|close|closes|closed|closing|hours"
    r"|breakfast|brunch|lunch|dinner|supper|meal|meals|snack|weather|forecast|outside|traffic"
    r"|sunrise|sunset|dark|daylight|monday|tuesday|wednesday|thursday|friday|saturday|sunday"
    r"|holiday|holidays|deliver|delivered|delivery|what (should|can|could|shall|do) (i|we) (eat"
    r"|cook|make|have|drink|wear)|(should|can|could|may) (i|we) (have|eat|drink|take|go|call"
    r"|start|run|nap|sleep|text|email|visit)|beer|wine|alcohol|cocktail|drink|drinks|espresso"
    r"|coffee|caffeine|tea|nap|sleep|bed|bedtime|(good|right|best|bad|better) time)\b"
)
# Shouted, still social ("OK", "LOL"); any other word in capitals may be a name or a role.
CHATTER_UPPER = _words("ok okay lol lmao omg ty thx tysm np hi hey hello thanks wow kk")
# Words a user may stretch for emphasis ("heyyy", "hii", "thxx", "okk"); no other word is
# shrunk ("too" is not "to").
CHATTER_STRETCHABLE = _words("hi hey hello hiya heya yo ok okay thx ty lol bye thanks wow oh ah aw")
# What an assistant's social reply may hold besides: its "yes"-words are no answer to anyone.
CHATTER_ASSISTANT = CHATTER | _words(
    "sure absolutely totally of course happy doing anytime whenever soon here good well fine"
)
# Function words: a turn of these alone ("That's it!", "This is it") confirms something.
CHATTER_FUNCTION = _words(
    "i i'm im you your it it's that that's thats this is was to for the and so very really "
    "pretty you're youre i've ive let's u ur again lately whenever"
)
CHATTER_MAX_WORDS = 12
CHATTER_TOKEN = re.compile(r"\w+(?:['-]\w+)*")  # "i'm", "so-so": one word each
# A social turn's characters: letters, spaces, punctuation and these emoji. Any other symbol
# may carry a fact ("I'm 🤰", "🚫🥜 for me", "In ℃", "$ is fine", a soft hyphen inside "U\xadK").
CHATTER_EMOJI = frozenset(
    "😊🙂😄😃😀😁😆😅😂🤣😉😍🥰😘☺❤💕💖👋👍🙏🎉🙌✨😎🤗👌🤘💐🌺😄🥳🫶\ufe0f🙃🤙✨💫🙋🤩😇🤝🌟⭐"
)
CHATTER_PUNCT = frozenset(".,!?'\"\u2019\u2018\u201c\u201d-\u2013\u2014:;()~\u2026 ")  # no "^ this"
ABBREVIATION = re.compile(r"\b[a-z]\.[a-z]\b")  # "U.K.", "a.m.": a place, a time
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
# The edit between two questions (cache.edits): words whose change alone leaves the question
# to the verifier (function words, persons, tense and modality, framing verbs: "Explain what X
# is" / "What does X mean"); a change of any other word inside an otherwise identical
# question is a near miss. Not here, on purpose: negations, quantifiers ("all", "only",
# "any", "every", "except"), "why"/"when"/"where"/"who", "from", "without", "more"/"less".
EDIT_FUNCTION = _words(
    "the a an my your his her our their its some so just really actually basically do does did "
    "i you we me us to of in on at for with up is are was were be been can could would should "
    "will it this that these those and or about there here has had am get going explain "
    "tell describe give show know want need like way ways what which how s works work says say "
    "means mean also too even please pls plz kindly got guys folks per"
)
# Function words that may be swapped for each other in a repeat ("What is" / "Which is",
# "in" / "on Linux"); any other swap of function words is a near miss ("should" / "can I
# take", "and" / "or", "is" / "was", "my" / "your").
EDIT_SWAPS = frozenset(
    frozenset(pair.split())
    for pair in ("what which", "is are", "was were", "do does", "a an", "in on", "this that",
                 "these those", "does will", "do will", "should do", "to into", "my the",
                 "the our", "the your", "can could", "will would", "the some", "a per")
)  # fmt: skip
# Shorthand and spellings that are the same word: "u" / "you", British / American spelling.
EDIT_SHORTHAND = {
    "u": "you", "ur": "your", "hw": "homework", "bc": "because", "tho": "though",
    "thru": "through", "abt": "about", "b4": "before", "intl": "international",
    "docs": "documents", "doc": "document", "ppl": "people", "msg": "message",
    "acct": "account", "govt": "government", "dept": "department", "appt": "appointment",
    "tmrw": "tomorrow", "tmr": "tomorrow", "cuz": "because", "bday": "birthday",
    "pic": "picture", "pics": "pictures", "fav": "favorite", "fave": "favorite",
    "approx": "approximately", "asap": "as soon as possible", "info": "information",
    "im": "i am", "whats": "what is", "hows": "how is",
    "dont": "do not", "doesnt": "does not", "cant": "cannot", "wont": "will not",
    "isnt": "is not", "thats": "that is",
    # eighth session: more chat shorthand, and units and apps as people shorten them
    "r": "are", "diff": "difference", "thx": "thanks", "pls": "please", "plz": "please",
    "oz": "ounces", "lbs": "pounds", "lb": "pounds", "hrs": "hours", "hr": "hours",
    "mins": "minutes", "secs": "seconds", "yrs": "years", "yr": "year",
    "insta": "instagram", "ig": "instagram", "fb": "facebook", "yt": "youtube",
    "convo": "conversation", "pwd": "password", "vid": "video", "vids": "videos",
    "js": "javascript", "nyc": "new york city", "vit": "vitamin", "jan": "january",
    "feb": "february", "jun": "june", "jul": "july", "aug": "august", "sept": "september",
    "oct": "october", "nov": "november", "pct": "percent", "k8s": "kubernetes",
    "addr": "address", "notifs": "notifications", "notif": "notification",
    "tsp": "teaspoons", "tbsp": "tablespoons", "shld": "should", "shud": "should",
    "temp": "temperature", "alot": "a lot", "w": "with",
}  # fmt: skip
# British words no ending rule of cache.edits._american reaches, and their American forms
# (in EDIT_SHORTHAND until the fifteenth session; apart since, as a name keeps its
# spelling: "Grey's Anatomy" is no "gray").
EDIT_BRITISH = {
    "tyre": "tire", "tyres": "tires", "grey": "gray", "programme": "program",
    "aluminium": "aluminum", "cheque": "check", "mum": "mom", "jewellery": "jewelry",
    "plough": "plow", "kerb": "curb", "pyjamas": "pajamas", "draught": "draft",
    "aeroplane": "airplane", "aeroplanes": "airplanes", "sceptic": "skeptic",
    "sceptical": "skeptical", "manoeuvre": "maneuver", "manoeuvres": "maneuvers",
    "ageing": "aging",
}  # fmt: skip
# "what's" is "what is"; "the kid's party" is about the kid (cache.edits drops that "'s").
EDIT_KEEPS_IS = _words("what it that there he she who where how here when why which")
# Irregular plurals, as their singular (cache.edits: "children" / "kids").
EDIT_IRREGULAR = {
    "children": "child", "people": "person", "men": "man", "women": "woman", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "geese": "goose", "lives": "life", "knives": "knife",
    "wives": "wife", "leaves": "leaf", "halves": "half", "shelves": "shelf", "wolves": "wolf",
}  # fmt: skip
# Endings a crude derivational stem drops (cache.edits: "meditation" / "meditating"; never
# a tense or "-er": "expired" / "expires", "painter" / "painting" are different words).
EDIT_STEM_SUFFIXES = ("ations", "ation", "ating", "ated", "ates", "ings", "ing", "ions", "ion")
# British endings and their American forms, applied only when the result is a known word.
EDIT_SPELLINGS: tuple[tuple[str, str], ...] = (("our", "or"), ("tre", "ter"), ("ise", "ize"))
EDIT_SPELLINGS += (("ised", "ized"), ("ising", "izing"), ("isation", "ization"), ("yse", "yze"))
EDIT_SPELLINGS += (("ogue", "og"),)
# More British spellings, anywhere in a word of five letters or more, applied only when
# WordNet gives both spellings a shared sense (cache.edits._american): "anaemia",
# "oestrogen", "licence", "judgement", "mould", "storey", "aluminium".
EDIT_SPELLINGS_SENSED: tuple[tuple[str, str], ...] = (
    ("ae", "e"), ("oe", "e"), ("ence", "ense"), ("ement", "ment"), ("ou", "o"), ("ey", "y"),
    ("ium", "um"),
)  # fmt: skip
# Endings, with a plural "s" after them or none: "programme", "litre", "fibres" (not "-ette":
# "toilette" is no "toilet", a red team's, fifteenth session).
EDIT_ENDINGS_SENSED: tuple[tuple[str, str], ...] = (("mme", "m"), ("re", "er"))
# Endings whose British form doubles an "l" after one vowel: "travelled", "cancelling",
# "modeller" (cache.edits._american: only when the verb, four letters or more, is a word).
EDIT_DOUBLED_L = ("lled", "lling", "ller", "llers")
# Words those rules would respell into another word WordNet happens to give a shared sense:
# "untilled" / "untiled", "timbre" / "timber" (wood), "eagre" / "eager".
EDIT_NOT_BRITISH = frozenset({"until", "timbre", "eagre"})

# A question's stance (cache.guards.stance): whether something is all right, or whether it is
# not. "Is it okay to give her aspirin?" / "Should I avoid giving her aspirin?" ask the same
# thing with opposite yes/no answers (a red-team pass, ninth session). Words, and word pairs
# of the features' words; "good" and "bad" only in pairs ("good idea", "bad for").
STANCE_OK = _words(
    "ok okay safe fine alright allowed acceptable advisable recommended healthy wise legal "
    "permitted harmless"
)
STANCE_NOT_OK = _words(
    "avoid unsafe dangerous harmful risky inadvisable unhealthy unwise illegal forbidden "
    "prohibited toxic"
)
STANCE_OK_PAIRS = frozenset({("good", "idea"), ("good", "for"), ("all", "right")})
STANCE_NOT_OK_PAIRS = frozenset(
    {("bad", "idea"), ("bad", "for"), ("stay", "away"), ("steer", "clear"), ("a", "mistake")}
)
