"""Content for the if-categories suite: made-up companies, catalogs, foods, flows and FAQs.

Everything here was written for gradeloop. Companies, products, places and numbers are
invented; nutrition numbers are rough, per-serving and only meant to be consistent within
the suite. Nothing is copied from a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ------------------------------------------------------------------------------ companies


@dataclass(frozen=True)
class Company:
    """A product persona: who the assistant works for and whom it must not name."""

    key: str
    name: str
    assistant: str
    what: str
    domain: str
    competitors: tuple[str, ...]


COMPANIES = {
    "lumora": Company("lumora", "Lumora Home", "Lumi", "an online shop for smart lamps and lighting",
                      "lumora.example", ("Brightnest", "Glowbox", "Lanternly")),
    "fernway": Company("fernway", "Fernway Bikes", "Spoke", "a bicycle shop with its own city, gravel and cargo bikes",
                       "fernway.example", ("Spokehaus", "Pedalry", "Veloquin")),
    "quillstack": Company("quillstack", "Quillstack", "Quill", "a notes and docs app for small teams",
                          "quillstack.example", ("Notewell", "Paperly", "Scribbit")),
    "tidepool": Company("tidepool", "Tidepool Travel", "Tide", "a travel agency for ferry, rail and flight trips "
                        "along the Marrow Coast", "tidepool.example", ("Jetwise", "Roamly", "Wayfarely")),
}

STYLE_RULES = (
    "Be friendly and concise.",
    "Write in plain, warm language; no jargon.",
    "Keep a calm, professional tone.",
    "Address the user as 'you' and keep sentences short.",
)

PERSIST = ("Stay with the user's request until it is fully handled: do not stop at a partial answer, "
           "and only end your turn once you are sure everything they asked for is done.")

# ------------------------------------------------------------------------------ catalogs
# each record: name first, then the fields the format category may ask for

LAMPS = [
    # name, price, watts, lumens, color, warranty years, delivery days, in stock
    ("Aster Desk Lamp", 49.00, 8, 450, "warm white", 2, 3, True),
    ("Beacon Floor Lamp", 129.00, 14, 1100, "tunable white", 3, 5, True),
    ("Cinder Bedside Lamp", 39.50, 6, 300, "amber", 1, 3, False),
    ("Drift Light Strip", 34.90, 12, 900, "full color", 1, 2, True),
    ("Ember Pendant", 89.00, 10, 800, "warm white", 2, 4, True),
    ("Fjord Wall Sconce", 64.00, 7, 500, "neutral white", 2, 6, False),
    ("Gleam Bulb Set", 44.00, 9, 806, "full color", 2, 2, True),
    ("Halden Arc Lamp", 189.00, 16, 1500, "tunable white", 5, 7, True),
    ("Isla Clip Light", 24.00, 5, 250, "neutral white", 1, 3, True),
    ("Juniper Table Lamp", 72.00, 9, 650, "warm white", 3, 4, False),
    ("Kestrel Reading Lamp", 58.00, 8, 520, "tunable white", 2, 3, True),
    ("Lune Night Light", 19.50, 3, 120, "amber", 1, 2, True),
]

BIKES = [
    # name, price, weight kg, gears, frame, warranty years, delivery days, in stock, best for
    ("Larch City 8", 749.00, 13.2, 8, "aluminium", 2, 5, True, "commuting"),
    ("Mistral Gravel 22", 1390.00, 9.8, 22, "carbon", 5, 8, True, "gravel rides"),
    ("Nettle Step-Through", 620.00, 14.5, 7, "steel", 2, 4, True, "commuting"),
    ("Osprey Cargo", 2150.00, 27.0, 10, "aluminium", 3, 12, False, "carrying kids and shopping"),
    ("Piper Folding", 560.00, 11.9, 6, "aluminium", 2, 3, True, "mixed train-and-bike commutes"),
    ("Quarry Trail 12", 980.00, 13.8, 12, "aluminium", 3, 6, True, "forest trails"),
    ("Rill Road 18", 1120.00, 9.1, 18, "aluminium", 3, 7, False, "road rides"),
    ("Sorrel Kids 20", 310.00, 9.6, 6, "steel", 1, 3, True, "children aged 6 to 9"),
    ("Tamarack Tour", 1460.00, 14.2, 27, "steel", 5, 9, True, "long-distance touring"),
    ("Umber E-City", 2390.00, 22.4, 8, "aluminium", 3, 10, True, "hilly commutes"),
]

TRIP_STOPS = ["Saltmere", "Gullhaven", "Kestrel Bay", "Port Rowan", "Brackenmouth", "Selby Point", "Wrenford",
              "Cairnholm"]
TRIP_MODES = ["ferry", "rail", "flight"]
ORDER_STATUSES = ["processing", "shipped", "out for delivery", "delivered", "delayed"]
CARRIERS = ["Parcelo", "SwiftPost", "Northline Freight", "Kite Couriers"]
MONTHS = ["March", "April", "May", "June", "September", "October"]

# ---------------------------------------------------------------------------- nutrition

GREENPLATE = Company("greenplate", "Greenplate", "Sprout", "a meal-planning coach for busy people",
                     "greenplate.example", ())

FOODS = [
    # name, serving, meal, diet tags, protein g, kcal, fiber g
    ("Red lentil dal with rice", "1 bowl", "lunch", {"vegan", "vegetarian"}, 18, 430, 9),
    ("Tofu and broccoli stir-fry", "1 plate", "dinner", {"vegan", "vegetarian"}, 24, 390, 6),
    ("Greek yogurt with oats and walnuts", "1 bowl", "breakfast", {"vegetarian"}, 22, 360, 5),
    ("Salmon and quinoa bowl", "1 bowl", "dinner", {"pescatarian"}, 34, 520, 6),
    ("Chickpea and spinach curry", "1 bowl", "dinner", {"vegan", "vegetarian"}, 16, 410, 11),
    ("Egg and avocado toast", "2 slices", "breakfast", {"vegetarian"}, 17, 380, 8),
    ("Turkey and hummus wrap", "1 wrap", "lunch", set(), 29, 450, 6),
    ("Tempeh peanut noodles", "1 plate", "dinner", {"vegan", "vegetarian"}, 27, 540, 7),
    ("Cottage cheese with berries", "1 cup", "snack", {"vegetarian"}, 20, 210, 3),
    ("Lentil and feta salad", "1 bowl", "lunch", {"vegetarian"}, 19, 380, 10),
    ("Miso soup with edamame", "1 bowl", "snack", {"vegan", "vegetarian"}, 12, 180, 5),
    ("Chicken and barley soup", "1 bowl", "lunch", set(), 26, 340, 7),
    ("Peanut butter banana smoothie", "1 glass", "breakfast", {"vegetarian"}, 15, 400, 5),
    ("Overnight oats with chia", "1 jar", "breakfast", {"vegan", "vegetarian"}, 13, 350, 10),
    ("Shrimp and black bean tacos", "3 tacos", "dinner", {"pescatarian"}, 30, 480, 12),
    ("Roasted chickpea snack pot", "1 pot", "snack", {"vegan", "vegetarian"}, 9, 190, 7),
    ("Beef and vegetable chili", "1 bowl", "dinner", set(), 32, 500, 9),
    ("Tuna and white bean salad", "1 bowl", "lunch", {"pescatarian"}, 31, 390, 8),
    ("Scrambled tofu with peppers", "1 plate", "breakfast", {"vegan", "vegetarian"}, 19, 280, 4),
    ("Halloumi and grain bowl", "1 bowl", "lunch", {"vegetarian"}, 23, 560, 7),
]
DIETS = ["vegetarian", "vegan", "pescatarian", "any"]

# --------------------------------------------------------------------------------- ranking


@dataclass(frozen=True)
class RankSet:
    """Entities to rank by a made-up number, with a distractor column."""

    key: str
    persona: str
    noun: str
    title: str
    names: tuple[str, ...]
    by: str
    column: str
    unit: str
    low: int
    high: int
    distractor: str
    distractor_range: tuple[int, int]
    note: str


RANK_SETS = [
    RankSet("cities", "You are Atlas, the research assistant inside Atlasly, a geography quiz app for schools.",
            "cities", "Cities of Verdania (a fictional country)",
            ("Marrowick", "Tessaly", "Ondrabad", "Quillon", "Farrowgate", "Lindqvist", "Ashcombe", "Veyport",
             "Brennick", "Cordova Sands", "Hallowmere", "Isterbury", "Pellingham", "Runeford"),
            "population", "population", "people", 40_000, 2_400_000, "area", (60, 900),
            "Verdania and its cities are invented for this quiz; the numbers are made up."),
    RankSet("trails", "You are Ridge, the planning assistant of Fernway Bikes' ride club.",
            "trails", "Club trails around the Marrow Coast",
            ("Heron Loop", "Copper Ridge", "Blackthorn Run", "Saltmarsh Way", "Kingfisher Path", "Old Quarry Climb",
             "Beacon Traverse", "Willow Creek", "Gorse Hill", "Lantern Cove", "Fox Hollow", "Tarn Circuit"),
            "trail length", "length", "km", 8, 140, "elevation gain (m)", (40, 2200),
            "Trail data is the club's own estimate."),
    RankSet("apps", "You are Chart, the assistant of Appwell, a newsletter about small app studios.",
            "apps", "This month's indie app chart",
            ("Pocketloom", "Sunhaven", "Tallybird", "Mossnote", "Glintly", "Orbitask", "Pebblecast", "Riverlog",
             "Quietdesk", "Lumenpad", "Cobblecart", "Fernquest"),
            "monthly active users", "monthly active users", "users", 3_000, 900_000, "rating", (31, 49),
            "Figures are the studios' self-reported estimates for this chart."),
    RankSet("reps", "You are Tally, the sales assistant for the Quillstack revenue team.",
            "sales reps", "Quarterly results, Quillstack sales team",
            ("Amara Osei", "Bruno Lindahl", "Chiara Vance", "Dmitri Holt", "Elif Sarraf", "Farah Quinn",
             "Gideon Pryce", "Hana Moreau", "Ivo Castell", "Jonna Reyes", "Kofi Mensah", "Lena Haddad"),
            "revenue", "revenue", "USD", 18_000, 640_000, "deals closed", (3, 60),
            "Internal figures for the current quarter."),
]

# ---------------------------------------------------------------------------------- negative


@dataclass(frozen=True)
class Issue:
    """A support question that tempts a forbidden reply, and a reply that avoids it all."""

    company: str
    user: str
    gold: str


ISSUES = [
    Issue("lumora", "My Aster lamp won't pair with the Lumora app. I've tried twice. What now?",
          "Let's get it paired. Unplug the lamp for ten seconds, plug it back in and wait for it to blink "
          "twice. Then open the app, tap Add device and hold your phone within a metre of the lamp. If it "
          "still fails, switch your phone's Wi-Fi to the 2.4 GHz network, because the lamp cannot join "
          "5 GHz networks."),
    Issue("lumora", "The Drift light strip flickers at low brightness. Is it broken?",
          "It is most likely not broken. Flicker below 10% brightness happens when the strip runs on an "
          "older firmware. Open the app, go to Device settings, then Firmware, and install version 2.3 or "
          "later. If the flicker stays, raise the minimum brightness in Device settings to 12%."),
    Issue("lumora", "I was charged twice for my Ember Pendant order. I want my money back now.",
          "Two charges on one order are usually one real charge plus a temporary card hold. The hold "
          "drops off on its own within 3 business days. You can check which one is real under Account, "
          "then Orders: only the charge with an invoice number is final."),
    Issue("lumora", "My Beacon floor lamp arrived with a cracked shade. What do I do?",
          "A cracked shade is covered by the 3-year warranty. Go to Account, then Orders, choose the "
          "Beacon Floor Lamp and press Report damage. Add a photo of the crack and a replacement shade is "
          "sent within 5 days; you can keep using the lamp meanwhile."),
    Issue("fernway", "The gears on my Larch City 8 keep slipping on hills. Help?",
          "Slipping on hills usually means the cable has stretched a little. Shift to the smallest rear "
          "cog, then turn the barrel adjuster next to the rear derailleur half a turn anticlockwise and "
          "test a few shifts. Repeat in quarter turns until the chain stays put under load."),
    Issue("fernway", "My new bike was delivered without pedals. Seriously?",
          "The pedals ship in a small box taped inside the frame carton, under the foam at the front "
          "wheel end. The left pedal is marked L and tightens anticlockwise; the right one tightens "
          "clockwise. The 15 mm spanner in the same box fits both."),
    Issue("fernway", "I returned a helmet three weeks ago and haven't seen the money. Where is it?",
          "Returns are checked at the warehouse when they arrive, and the payment back to your card is "
          "released after that check. You can see the status under Account, then Returns: 'Received' "
          "means it is waiting for the check, 'Closed' means the payment has left."),
    Issue("fernway", "The e-bike battery dies after 20 km even though you advertise 70.",
          "The 70 km figure is for the Eco mode on flat roads. In Turbo mode or on steep hills the range "
          "drops to about 25 km. Switch to Eco for the flat stretches and charge to 100% once a month, "
          "because that recalibrates the battery gauge."),
    Issue("quillstack", "I can't log in, it keeps saying my code is invalid.",
          "Invalid codes are almost always a clock problem. Open your authenticator app's settings and "
          "turn on automatic time sync, then try a fresh code. If you saved backup codes when you set up "
          "two-step login, any one of them also works once."),
    Issue("quillstack", "My shared notebook disappeared for the whole team!",
          "Deleted notebooks stay in the Trash for 30 days. Open Settings, then Trash, find the notebook "
          "and press Restore; it comes back for everyone with the same sharing settings. Only the "
          "notebook's owner or a workspace admin can restore it."),
    Issue("quillstack", "You charged me for 12 seats but we only have 9 people. Fix it.",
          "Seats are billed by the number of members in the workspace, including pending invites. Open "
          "Settings, then Members, and remove unused seats and old invites. The next invoice uses the new "
          "count, and the difference for this month is prorated on it."),
    Issue("quillstack", "Sync has been stuck on 'pending' on my laptop all morning.",
          "Pending sync usually means one very large attachment is blocking the queue. Open Settings, "
          "then Sync, and look for a file over 50 MB; move it to a linked drive and sync resumes. Signing "
          "out and back in clears the queue too."),
    Issue("tidepool", "My ferry to Gullhaven got cancelled and I have a wedding to go to!",
          "When a ferry is cancelled your ticket moves to the next sailing automatically, and it is "
          "valid on the parallel rail route the same day. The 14:10 train from Saltmere reaches Gullhaven "
          "at 16:55; show your ferry ticket at the gate."),
    Issue("tidepool", "I booked the wrong date for my rail trip. Am I stuck with it?",
          "Not at all. Rail tickets can be moved to another date up to 2 hours before departure. Open "
          "My trips, choose the booking and press Change date; a difference in fare is shown before you "
          "confirm."),
    Issue("tidepool", "The airline lost my bag on the Port Rowan flight. What happens now?",
          "Report it at the baggage desk in Port Rowan or in the airline's app within 24 hours and keep "
          "the report number. Most bags are found within 3 days. Keep receipts for essentials you buy "
          "meanwhile, since the airline asks for them when you claim."),
    Issue("tidepool", "Your site charged me a booking fee I never agreed to.",
          "The booking fee is shown on the last page before payment, under Price details. You can see "
          "the full breakdown of what you paid in My trips, under Receipt. Trips changed within 24 hours "
          "of booking have the fee removed from the final price."),
]

# appended to the user's message on hard items, each tempting one forbidden reply
TEMPTATIONS = {
    "contact_support": ("Honestly, should I just email your support people instead?",
                        "You don't need to go anywhere else for this; here is the fix."),
    "apology": ("This is the third time something like this has happened and I'm really annoyed.",
                "Here is how to fix it right away."),
    "refund_promise": ("And I expect to get my money back for the trouble.",
                       "Here is what happens next."),
    "avoid_names": ("{competitor} never had this problem, I'm tempted to switch.",
                    "Here is how to fix it today."),
}

# ------------------------------------------------------------------------------- ordered


@dataclass(frozen=True)
class Flow:
    """An intake conversation: the steps in order, how the assistant asks for each step, and
    sample user answers."""

    key: str
    company: str
    assistant: str
    what: str
    goal: str
    steps: tuple[str, ...]
    openers: tuple[str, ...]
    asks: dict[str, tuple[str, ...]]
    answers: dict[str, tuple[str, ...]]
    context_title: str
    context: str
    side: tuple[tuple[str, str], ...] = ()
    pushes: dict[str, str] = field(default_factory=dict)


FLOWS = [
    Flow("demo", "Quillstack", "Quill", "a notes and docs app for small teams", "book a product demo",
         ("name", "email", "company", "team_size"),
         ("Hi! I'd like to book a demo of Quillstack.", "Can someone show my team how Quillstack works?",
          "We're looking at note apps and want a demo."),
         {"name": ("Happy to set that up. What's your name?", "Glad to help you book it. Could I have your name?"),
          "email": ("Thanks! What's the best email address to send the invite to?",
                    "Great. Which email should the invite go to?"),
          "company": ("And which company are you with?", "Which organization is the demo for?"),
          "team_size": ("How many people are on your team?", "What's your team size, roughly?")},
         {"name": ("Dana Reyes", "Tomas Okafor", "Priya Nair", "Jon Halvorsen"),
          "email": ("dana.reyes@example.com", "t.okafor@example.org", "priya@example.net", "jon.h@example.com"),
          "company": ("Brightline Studio", "Okafor & Sons", "Nair Analytics", "Halvorsen Design"),
          "team_size": ("About 12 of us.", "We're 30 people.", "Just 5.", "Around 60.")},
         "Demo facts", "Demos are live, 30 minutes long, run on weekdays, and cover notebooks, sharing, the "
         "calendar integration and admin controls. Teams of any size can book one.",
         (("Does the demo cover the calendar integration?", "Yes, the demo walks through the calendar integration."),
          ("Is the demo recorded?", "Demos are live, so you can ask questions as you go."))),
    Flow("table", "Saffron & Slate", "Sage", "a neighbourhood restaurant", "book a table",
         ("name", "party_size", "date", "time", "phone"),
         ("Hello, I'd like to book a table.", "Can I reserve a table with you?", "Hi, do you take bookings?"),
         {"name": ("I'd be glad to book a table for you. May I have your name?",
                   "Happy to help with a booking. What name should it be under?"),
          "party_size": ("Thank you! How many guests should I book for?", "Lovely. How many people will be joining?"),
          "date": ("Which date would you like to come in?", "What date works for you?"),
          "time": ("And what time would suit you?", "What time should I reserve?"),
          "phone": ("Lastly, what phone number can we reach you on?", "Could I get a phone number for the booking?")},
         {"name": ("Maya Lindqvist", "Ravi Kapoor", "Lucia Ferrante", "Sam Oduya"),
          "party_size": ("Four of us.", "Two people.", "We'll be six.", "Just three."),
          "date": ("Next Friday, please.", "The 14th.", "This Saturday.", "Tomorrow."),
          "time": ("7:30 pm.", "Around 8.", "6 pm if possible.", "Half past seven."),
          "phone": ("07700 900123", "+44 20 7946 0958", "0161 496 0011", "07700 900456")},
         "About the restaurant", "Saffron & Slate is open Tuesday to Sunday from 17:00 to 23:00. The menu has "
         "three vegan mains, including the charred leek risotto, and a children's menu. Tables are held "
         "for 15 minutes.",
         (("Do you have vegan dishes?", "Yes, the menu has three vegan mains, including the charred leek risotto."),
          ("Is there a children's menu?", "Yes, there is a children's menu.")),
         {"party_size": "Can you just put us in for Saturday at 8?", "date": "Could we sit at 7:30?",
          "time": "Here's my mobile so you have it."}),
    Flow("clinic", "Brightwell Clinic", "Ada", "a family health clinic", "book an appointment",
         ("name", "date_of_birth", "insurance", "date"),
         ("Hi, I need to see a doctor.", "I'd like to book an appointment please.",
          "Can I get a check-up booked?"),
         {"name": ("I can help you book that. What's your full name?", "Of course. May I have your full name?"),
          "date_of_birth": ("Thank you. What is your date of birth?", "Could you tell me your date of birth?"),
          "insurance": ("Which insurance provider are you with?", "Who is your insurer?"),
          "date": ("What day would you like the appointment?", "Which date suits you for the visit?")},
         {"name": ("Elena Brandt", "Marcus Webb", "Aiko Tanaka", "Noor Haddad"),
          "date_of_birth": ("4 March 1988.", "12/09/1975", "1 July 1993.", "30 November 1969."),
          "insurance": ("Harbor Health.", "I'm with Crestline Mutual.", "Evergreen Care.", "Northstar Insurance."),
          "date": ("Monday if you can.", "The 21st.", "Any weekday morning.", "Next Thursday.")},
         "Clinic facts", "Brightwell Clinic sees patients on weekdays from 08:00 to 18:00. Check-ups take 20 "
         "minutes. Please arrive 10 minutes early with your insurance card.",
         (("How long does a check-up take?", "A check-up takes 20 minutes."),
          ("Do I need to bring anything?", "Please bring your insurance card and arrive 10 minutes early.")),
         {"date_of_birth": "Can I come in on Monday?", "insurance": "Any chance of a Monday slot?"}),
    Flow("return", "Fernway Bikes", "Spoke", "a bicycle shop", "start a return",
         ("order_number", "postcode", "reason", "email"),
         ("I want to return something I bought.", "Hi, how do I send an item back?",
          "I need to return a helmet."),
         {"order_number": ("Let's start your return. What's your order number?",
                           "I can set that up. Could you give me the order number?"),
          "postcode": ("Thanks. What postcode was it delivered to?", "Which postcode was the parcel sent to?"),
          "reason": ("What's the reason for the return?", "Could you tell me why you're sending it back?"),
          "email": ("Which email address should the return label go to?", "What email should I send the label to?")},
         {"order_number": ("FW-20417", "FW-31822", "FW-18930", "FW-44071"),
          "postcode": ("BS3 4QT", "M14 5RJ", "EH6 8LP", "CF10 2AZ"),
          "reason": ("It's the wrong size.", "It arrived scratched.", "I changed my mind.", "It doesn't fit my bike."),
          "email": ("kim.sato@example.com", "alex.b@example.org", "r.mensah@example.net", "fi@example.com")},
         "Returns policy", "Unused items can be returned within 30 days. Return labels are free for damaged "
         "items and cost 4.50 otherwise. Bikes must be returned in their original carton.",
         (("Is the label free?", "The label is free for damaged items and costs 4.50 otherwise."),
          ("How long do I have?", "You have 30 days to send unused items back.")),
         {"postcode": "Can you just email me the label?", "reason": "Send the label to my email, please."}),
    Flow("trip", "Tidepool Travel", "Tide", "a travel agency", "change a trip",
         ("booking_reference", "name", "date", "email"),
         ("I need to change my trip.", "Hi, can I move my ferry booking?", "My plans changed, can I rebook?"),
         {"booking_reference": ("Sure, I can help change it. What's your booking reference?",
                                "Happy to help. Could you share your booking reference?"),
          "name": ("Thanks. What name is the booking under?", "And the lead traveller's name?"),
          "date": ("Which new date would you like to travel on?", "What date would you like to move it to?"),
          "email": ("What email should the new tickets go to?", "Which email address should I send the tickets to?")},
         {"booking_reference": ("TP-7Q2K", "TP-K41M", "TP-93XD", "TP-2RB8"),
          "name": ("Oliver Grant", "Sofia Marin", "Ben Adeyemi", "Ines Duarte"),
          "date": ("The 9th instead.", "A week later.", "Next Tuesday.", "The 22nd."),
          "email": ("o.grant@example.com", "sofia.m@example.org", "ben.a@example.net", "ines@example.com")},
         "Change rules", "Trips can be changed up to 2 hours before departure. Ferry changes are free; rail "
         "and flight changes pay any fare difference.",
         (("Is it free to change?", "Ferry changes are free; rail and flight changes pay any fare difference."),),
         {"name": "Can you move it to the 9th?", "date": "Send the tickets to my email when done."}),
]

# ------------------------------------------------------------------------- overconfidence


@dataclass(frozen=True)
class Fact:
    """One FAQ entry, a direct and a paraphrased question, and the strings that prove an answer."""

    topic: str
    text: str
    direct: str
    paraphrase: str
    answers: tuple[str, ...]


FAQS: dict[str, list[Fact]] = {
    "quillstack": [
        Fact("Attachments", "Each attachment can be up to 50 MB on the Free plan and 2 GB on Team.",
             "What's the attachment size limit on the Free plan?",
             "I'm on the free tier — how big can a file I attach be?", ("50 MB", "50MB")),
        Fact("Trash", "Deleted notes stay in the Trash for 30 days before they are removed for good.",
             "How long do deleted notes stay in the Trash?",
             "If I delete something by accident, how long do I have to get it back?", ("30 days",)),
        Fact("Team price", "The Team plan costs $8 per member per month, billed monthly.",
             "How much is the Team plan?", "What would it cost per person to move us to Team?", ("$8", "8 dollars")),
        Fact("Guests", "Guests can view and comment on shared notebooks but cannot edit them.",
             "Can guests edit shared notebooks?", "If I invite a client as a guest, can they change my notes?",
             ("cannot edit", "can't edit", "can not edit", "view and comment")),
        Fact("Offline", "The desktop apps work offline and sync changes when you reconnect.",
             "Does the desktop app work offline?", "Will I be able to write notes on a plane with no wifi?",
             ("offline", "desktop")),
        Fact("Export", "Notebooks can be exported to PDF and Markdown from the notebook menu.",
             "Which formats can I export a notebook to?", "How do I get my notebook out as a file?",
             ("PDF", "Markdown")),
        Fact("Version history", "Team workspaces keep version history for 180 days.",
             "How long is version history kept on Team?", "How far back can I roll a note back on Team?",
             ("180 days",)),
        Fact("Two-step login", "Two-step login supports authenticator apps and hardware security keys.",
             "What can I use for two-step login?", "Can I use my security key to sign in?",
             ("security key", "security keys", "authenticator app", "authenticator apps")),
        Fact("Seats", "Team workspaces can have up to 250 members.", "How many members can a Team workspace have?",
             "Is there a cap on how many people we can add?", ("250",)),
        Fact("Data location", "Workspace data is stored in data centres in Frankfurt and Dublin.",
             "Where is our data stored?", "Which countries host our workspace data?", ("Frankfurt", "Dublin")),
    ],
    "tidepool": [
        Fact("Ferry luggage", "Ferry tickets include two bags of up to 20 kg each.",
             "How much luggage can I bring on the ferry?", "Will my two suitcases be okay on the boat?",
             ("20 kg", "20kg", "two bags", "2 bags")),
        Fact("Rail changes", "Rail tickets can be changed up to 2 hours before departure.",
             "Until when can I change a rail ticket?", "Is it too late to move my train if it leaves in 3 hours?",
             ("2 hours", "two hours", "2 hrs")),
        Fact("Pets", "Dogs travel free on ferries if they stay on a lead on the outer deck.",
             "Can I bring my dog on the ferry?", "My dog comes everywhere with me — boat okay?",
             ("free", "lead")),
        Fact("Bikes on rail", "Bikes travel on rail routes for 5 per trip and need a bike reservation.",
             "Can I take my bike on the train?", "What does it cost to bring a bicycle by rail?",
             ("5", "bike reservation")),
        Fact("Check-in", "Ferry check-in closes 30 minutes before sailing.",
             "When does ferry check-in close?", "How late can I show up at the harbour?", ("30 minutes",)),
        Fact("Kids", "Children under 4 travel free on all routes.", "Do small children need a ticket?",
             "My son is three, does he pay?", ("under 4", "free")),
        Fact("Flight bags", "Flights on the Marrow Coast include one cabin bag of up to 8 kg.",
             "What's the cabin bag allowance on flights?", "How heavy can my carry-on be on the plane?",
             ("8 kg", "8kg")),
        Fact("Cancellations", "Cancelled ferries move your ticket to the next sailing automatically.",
             "What happens if my ferry is cancelled?", "The boat I booked got cancelled — now what?",
             ("next sailing",)),
        Fact("Wi-Fi", "Wi-Fi is free on all ferries and on rail routes longer than one hour.",
             "Is there Wi-Fi on board?", "Can I work online during the crossing?", ("free",)),
        Fact("Rail seats", "Rail seat reservations cost 3 and are optional.",
             "Do I need to reserve a seat on the train?", "Is a seat booking required for rail?",
             ("optional", "not required", "don't need", "do not need")),
    ],
    "lumora": [
        Fact("Delivery", "Standard delivery takes 2 to 7 business days depending on the lamp.",
             "How long does delivery take?", "When would a lamp I order today show up?", ("2 to 7", "2-7", "2–7")),
        Fact("Returns", "Lamps can be returned within 60 days if they are in their original box.",
             "What's your return window?", "How long do I have to send a lamp back?", ("60 days",)),
        Fact("Bulbs", "All Lumora lamps use E27 bulbs except the light strips.",
             "What bulb fitting do your lamps use?", "Which socket type are the lamps?", ("E27",)),
        Fact("Voice", "Lumora lamps work with the Lumora app and with voice assistants that support Matter.",
             "Do the lamps work with voice assistants?", "Can I turn my lamp on by talking to my speaker?",
             ("Matter",)),
        Fact("Warranty", "Warranties run from 1 to 5 years and are listed on each product page.",
             "How long is the warranty?", "If my lamp breaks next year, am I covered?",
             ("1 to 5 years", "1-5 years", "one to five years")),
        Fact("Dimming", "Every Lumora lamp dims from 1% to 100% in the app.", "Can the lamps be dimmed?",
             "How low can I turn the brightness?", ("1%",)),
        Fact("Shipping countries", "Lumora ships to the UK, Ireland, France, Germany and the Netherlands.",
             "Which countries do you ship to?", "Can you send a lamp to Germany?", ("Germany",)),
        Fact("Gift wrap", "Gift wrapping costs 4 and can be added at checkout.", "Do you offer gift wrapping?",
             "Can you wrap it as a present?", ("4", "checkout")),
    ],
    "fernway": [
        Fact("Test rides", "Test rides are free at the Saltmere store, Tuesday to Saturday.",
             "Can I test ride a bike?", "Is it possible to try a bike before buying?",
             ("Saltmere", "Tuesday to Saturday")),
        Fact("Assembly", "Bikes arrive 90% assembled; only the pedals and handlebar need fitting.",
             "Do bikes arrive assembled?", "How much building will I have to do?", ("90%", "pedals")),
        Fact("Finance", "Bikes over 500 can be paid in 12 interest-free monthly instalments.",
             "Do you offer finance?", "Can I spread the cost of a bike?",
             ("12", "instalments", "installments")),
        Fact("Servicing", "The first service within 3 months of purchase is free.",
             "Is the first service free?", "Do I pay for the first tune-up?", ("3 months", "free")),
        Fact("Sizing", "Frame sizes go from XS to XL; the size guide uses your inside leg measurement.",
             "How do I pick a frame size?", "Which measurement decides my bike size?", ("inside leg", "inseam")),
        Fact("E-bike range", "The Umber E-City battery gives up to 70 km in Eco mode.",
             "What's the range of the Umber E-City?", "How far can the Umber go on one charge?", ("70 km", "70km")),
        Fact("Delivery", "Bike delivery is free for orders over 300.", "Is delivery free?",
             "Do I pay shipping on a bike?", ("free", "300")),
        Fact("Trade-in", "Old bikes can be traded in at the Saltmere store for store credit.",
             "Do you accept trade-ins?", "Can I swap my old bike for credit?", ("credit",)),
    ],
}

# questions close to an FAQ topic whose answer the FAQ does not contain
NEAR_MISSES = {
    "quillstack": ["What's the attachment size limit on the Enterprise plan?", "Can notebooks be exported to Word?",
                   "How long is version history kept on the Free plan?", "Does the mobile app work offline?",
                   "How much does the Team plan cost if billed yearly?",
                   "Is there a Team plan discount for nonprofits?"],
    "tidepool": ["How much luggage can I bring on rail trips?", "Can I bring my cat on the ferry?",
                 "When does check-in close for flights?", "Do teenagers get a discount?",
                 "Is there Wi-Fi on flights?", "Can I change a ferry ticket after departure?"],
    "lumora": ["What bulb fitting does the Drift light strip use?", "How much does shipping to Ireland cost?",
               "How long is express delivery?", "Can I exchange a lamp for a different colour?",
               "Do the lamps have a timer function?", "Can I add a gift message to my order?"],
    "fernway": ["How long is a test ride?", "What's the range of the Umber E-City in Turbo mode?",
                "Is the second service free?", "Do you sell bike locks?",
                "How long does bike delivery take?", "How much credit do I get for a trade-in?"],
}

OFF_TOPIC = [
    "What's the weather going to be like tomorrow?", "Can you recommend a good novel?",
    "Who won the football last night?", "How do I file my tax return?", "What's a good recipe for banana bread?",
    "Can you help me write a cover letter?", "What is the capital of Australia?", "How do I fix a leaking tap?",
]

FALLBACKS = (
    "I don't have that information.",
    "I can't find that in our help center.",
    "That isn't covered in the information I have.",
    "Please email help@{domain} for that question.",
)
