"""Well-known facts with their true value and plausible counterfactual values, for the grounding suite.

Four kinds: capitals (alternatives are other large cities of the same country), years of events
(counterfactuals shift the year), quantities (counterfactuals scale the number) and authors of
books (alternatives are other authors of the same language or era). :func:`facts` returns them
as ``{"kind", "subject", "value", "alternatives"}`` records.
"""

from __future__ import annotations

__all__ = ["facts", "KINDS"]

KINDS = ("capital", "year", "quantity", "author")

# country | capital | other large cities
_CAPITALS = """\
France|Paris|Lyon,Marseille,Toulouse
Germany|Berlin|Munich,Hamburg,Frankfurt
Italy|Rome|Milan,Naples,Turin
Spain|Madrid|Barcelona,Seville,Valencia
Portugal|Lisbon|Porto,Braga,Coimbra
United Kingdom|London|Manchester,Birmingham,Leeds
Ireland|Dublin|Cork,Galway,Limerick
Netherlands|Amsterdam|Rotterdam,Utrecht,Eindhoven
Belgium|Brussels|Antwerp,Ghent,Bruges
Switzerland|Bern|Zurich,Geneva,Basel
Austria|Vienna|Salzburg,Graz,Innsbruck
Poland|Warsaw|Krakow,Gdansk,Wroclaw
Czech Republic|Prague|Brno,Ostrava,Plzen
Hungary|Budapest|Debrecen,Szeged,Pecs
Greece|Athens|Thessaloniki,Patras,Heraklion
Sweden|Stockholm|Gothenburg,Malmo,Uppsala
Norway|Oslo|Bergen,Trondheim,Stavanger
Denmark|Copenhagen|Aarhus,Odense,Aalborg
Finland|Helsinki|Tampere,Turku,Oulu
Iceland|Reykjavik|Akureyri,Kopavogur,Hafnarfjordur
Russia|Moscow|Saint Petersburg,Novosibirsk,Kazan
Ukraine|Kyiv|Kharkiv,Odesa,Lviv
Romania|Bucharest|Cluj-Napoca,Timisoara,Iasi
Bulgaria|Sofia|Plovdiv,Varna,Burgas
Serbia|Belgrade|Novi Sad,Nis,Kragujevac
Croatia|Zagreb|Split,Rijeka,Osijek
Turkey|Ankara|Istanbul,Izmir,Bursa
Egypt|Cairo|Alexandria,Giza,Luxor
Morocco|Rabat|Casablanca,Marrakesh,Fez
Nigeria|Abuja|Lagos,Kano,Ibadan
Kenya|Nairobi|Mombasa,Kisumu,Nakuru
Ethiopia|Addis Ababa|Dire Dawa,Mekelle,Gondar
South Africa|Pretoria|Johannesburg,Durban,Port Elizabeth
Ghana|Accra|Kumasi,Tamale,Takoradi
Tanzania|Dodoma|Dar es Salaam,Arusha,Mwanza
Algeria|Algiers|Oran,Constantine,Annaba
Tunisia|Tunis|Sfax,Sousse,Kairouan
Senegal|Dakar|Thies,Saint-Louis,Touba
China|Beijing|Shanghai,Guangzhou,Shenzhen
Japan|Tokyo|Osaka,Kyoto,Yokohama
South Korea|Seoul|Busan,Incheon,Daegu
India|New Delhi|Mumbai,Kolkata,Bangalore
Pakistan|Islamabad|Karachi,Lahore,Peshawar
Bangladesh|Dhaka|Chittagong,Khulna,Sylhet
Indonesia|Jakarta|Surabaya,Bandung,Medan
Philippines|Manila|Cebu City,Davao City,Quezon City
Vietnam|Hanoi|Ho Chi Minh City,Da Nang,Hai Phong
Thailand|Bangkok|Chiang Mai,Phuket,Pattaya
Malaysia|Kuala Lumpur|George Town,Johor Bahru,Ipoh
Australia|Canberra|Sydney,Melbourne,Brisbane
New Zealand|Wellington|Auckland,Christchurch,Hamilton
Canada|Ottawa|Toronto,Montreal,Vancouver
United States|Washington, D.C.|New York City,Los Angeles,Chicago
Mexico|Mexico City|Guadalajara,Monterrey,Puebla
Brazil|Brasilia|Rio de Janeiro,Sao Paulo,Salvador
Argentina|Buenos Aires|Cordoba,Rosario,Mendoza
Chile|Santiago|Valparaiso,Concepcion,Antofagasta
Peru|Lima|Arequipa,Cusco,Trujillo
Colombia|Bogota|Medellin,Cali,Cartagena
Venezuela|Caracas|Maracaibo,Valencia,Barquisimeto
Cuba|Havana|Santiago de Cuba,Camaguey,Holguin
Iran|Tehran|Isfahan,Mashhad,Shiraz
Iraq|Baghdad|Basra,Mosul,Erbil
Saudi Arabia|Riyadh|Jeddah,Mecca,Dammam
Afghanistan|Kabul|Kandahar,Herat,Mazar-i-Sharif
Kazakhstan|Astana|Almaty,Shymkent,Karaganda
Mongolia|Ulaanbaatar|Erdenet,Darkhan,Choibalsan
Nepal|Kathmandu|Pokhara,Lalitpur,Biratnagar
Sri Lanka|Sri Jayawardenepura Kotte|Colombo,Kandy,Galle
Myanmar|Naypyidaw|Yangon,Mandalay,Bago
Scotland|Edinburgh|Glasgow,Aberdeen,Dundee
Wales|Cardiff|Swansea,Newport,Wrexham
Ecuador|Quito|Guayaquil,Cuenca,Ambato
Uruguay|Montevideo|Salto,Paysandu,Maldonado
Paraguay|Asuncion|Ciudad del Este,Encarnacion,Luque
Jamaica|Kingston|Montego Bay,Spanish Town,Portmore
Lebanon|Beirut|Tripoli,Sidon,Tyre
Jordan|Amman|Zarqa,Irbid,Aqaba
Syria|Damascus|Aleppo,Homs,Latakia
"""

# event (as a noun phrase) | year
_YEARS = """\
the fall of the Berlin Wall|1989
the first crewed Moon landing|1969
the sinking of the Titanic|1912
the storming of the Bastille|1789
the signing of the United States Declaration of Independence|1776
the end of the Second World War|1945
the start of the First World War|1914
the founding of the United Nations|1945
Columbus's first voyage to the Americas|1492
the Battle of Hastings|1066
the signing of Magna Carta|1215
the dissolution of the Soviet Union|1991
the launch of Sputnik 1|1957
the assassination of John F. Kennedy|1963
the Wall Street Crash|1929
the Great Fire of London|1666
the publication of Darwin's On the Origin of Species|1859
the first flight of the Wright brothers|1903
the opening of the Suez Canal|1869
the opening of the Panama Canal|1914
the eruption of Mount Vesuvius that buried Pompeii|79
the Chernobyl disaster|1986
the release of the first iPhone|2007
the founding of Google|1998
the first FIFA World Cup|1930
the first modern Olympic Games|1896
the reunification of Germany|1990
the independence of India|1947
the end of apartheid in South Africa|1994
the Battle of Waterloo|1815
the start of the French Revolution|1789
the first performance of Beethoven's Ninth Symphony|1824
the publication of Newton's Principia|1687
the completion of the Eiffel Tower|1889
the dedication of the Statue of Liberty|1886
the Cuban Missile Crisis|1962
the attack on Pearl Harbor|1941
the first ascent of Mount Everest|1953
the discovery of penicillin by Alexander Fleming|1928
the publication of the structure of DNA by Watson and Crick|1953
the invention of the World Wide Web by Tim Berners-Lee|1989
the Treaty of Versailles|1919
the death of Queen Victoria|1901
the coronation of Charlemagne as emperor|800
the fall of Constantinople|1453
the Battle of Gettysburg|1863
the abolition of slavery in the United States by the Thirteenth Amendment|1865
the Russian October Revolution|1917
the founding of the People's Republic of China|1949
the launch of the Hubble Space Telescope|1990
the first heart transplant|1967
the Good Friday Agreement|1998
the introduction of the euro as a currency for cash|2002
the Great Chicago Fire|1871
the San Francisco earthquake|1906
the first Nobel Prizes|1901
the founding of Rome according to legend|753
the Apollo 13 mission|1970
the Armistice of Compiegne ending the fighting of the First World War|1918
the launch of the International Space Station's first module|1998
"""

# quantity (noun phrase) | value | unit
_QUANTITIES = """\
the number of bones in the adult human body|206|bones
the number of planets in the Solar System|8|planets
the number of keys on a standard piano|88|keys
the number of squares on a chessboard|64|squares
the number of cards in a standard deck without jokers|52|cards
the number of players on a soccer team on the field|11|players
the number of chromosomes in a human body cell|46|chromosomes
the boiling point of water at sea level in degrees Celsius|100|degrees Celsius
the freezing point of water in degrees Fahrenheit|32|degrees Fahrenheit
the height of Mount Everest in metres|8849|metres
the number of states in the United States|50|states
the number of member states of the United Nations|193|member states
the number of elements in the periodic table|118|elements
the number of teeth in a full adult human set|32|teeth
the number of legs of a spider|8|legs
the number of hearts of an octopus|3|hearts
the number of strings on a standard guitar|6|strings
the number of days in a leap year|366|days
the number of minutes in a day|1440|minutes
the number of sides of a hexagon|6|sides
the number of books in the Harry Potter series|7|books
the number of time zones in Russia|11|time zones
the number of moons of Mars|2|moons
the number of countries in the European Union|27|countries
the number of bits in a byte|8|bits
the atomic number of carbon|6|
the atomic number of oxygen|8|
the atomic number of gold|79|
the number of amendments in the United States Bill of Rights|10|amendments
the number of symphonies Beethoven completed|9|symphonies
the number of wonders of the ancient world|7|wonders
the number of stripes on the flag of the United States|13|stripes
the number of stars on the flag of the European Union|12|stars
the speed of light in a vacuum in kilometres per second, rounded|299792|kilometres per second
the number of lines in a sonnet|14|lines
the number of players on a basketball team on the court|5|players
the number of provinces of Canada|10|provinces
the number of cantons of Switzerland|26|cantons
the number of rings on the Olympic flag|5|rings
"""

# book | author
_AUTHORS = """\
Pride and Prejudice|Jane Austen
Nineteen Eighty-Four|George Orwell
Moby-Dick|Herman Melville
War and Peace|Leo Tolstoy
Crime and Punishment|Fyodor Dostoevsky
The Great Gatsby|F. Scott Fitzgerald
Don Quixote|Miguel de Cervantes
Hamlet|William Shakespeare
The Adventures of Tom Sawyer|Mark Twain
One Hundred Years of Solitude|Gabriel Garcia Marquez
Les Miserables|Victor Hugo
Madame Bovary|Gustave Flaubert
The Odyssey|Homer
The Divine Comedy|Dante Alighieri
Frankenstein|Mary Shelley
Dracula|Bram Stoker
Jane Eyre|Charlotte Bronte
Wuthering Heights|Emily Bronte
Great Expectations|Charles Dickens
The Old Man and the Sea|Ernest Hemingway
To Kill a Mockingbird|Harper Lee
The Catcher in the Rye|J. D. Salinger
Brave New World|Aldous Huxley
The Hobbit|J. R. R. Tolkien
The Trial|Franz Kafka
Ulysses|James Joyce
Mrs Dalloway|Virginia Woolf
Anna Karenina|Leo Tolstoy
The Count of Monte Cristo|Alexandre Dumas
Faust|Johann Wolfgang von Goethe
The Little Prince|Antoine de Saint-Exupery
Things Fall Apart|Chinua Achebe
Beloved|Toni Morrison
Lolita|Vladimir Nabokov
The Name of the Rose|Umberto Eco
Robinson Crusoe|Daniel Defoe
Gulliver's Travels|Jonathan Swift
Alice's Adventures in Wonderland|Lewis Carroll
The Picture of Dorian Gray|Oscar Wilde
Of Mice and Men|John Steinbeck
"""


def _table(text: str) -> list[list[str]]:
    return [line.split("|") for line in text.strip().splitlines()]


def facts() -> list[dict[str, object]]:
    """Every fact as ``{"kind", "subject", "value", "alternatives", "unit"}``; year and
    quantity facts have no alternatives (the suite shifts or scales the value)."""
    out: list[dict[str, object]] = []
    for country, capital, others in _table(_CAPITALS):
        out.append({"kind": "capital", "subject": country, "value": capital, "alternatives": others.split(","),
                    "unit": ""})
    for event, year in _table(_YEARS):
        out.append({"kind": "year", "subject": event, "value": year, "alternatives": [], "unit": ""})
    for what, value, unit in _table(_QUANTITIES):
        out.append({"kind": "quantity", "subject": what, "value": value, "alternatives": [], "unit": unit})
    authors = _table(_AUTHORS)
    names = sorted({a for _, a in authors})
    for book, author in authors:
        out.append({"kind": "author", "subject": book, "value": author,
                    "alternatives": [n for n in names if n != author], "unit": ""})
    return out
