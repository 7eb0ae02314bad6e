"""Patient handouts: the plan on a card as a page a patient takes home.

- `plan`: the plan a handout shows (doses, dates, form, a pump's refill date), built from
  the card's own taper plan or pump reading, and its compact JSON form for the link;
- `texts`: every word of the page, per language, from rules/handout/ (checked at start-up);
- `link`: the signed, encrypted, expiring link a card carries (`links` of type absolute);
- `keys`: the key that signs links (a site's key file, or one generated once and kept in
  the service's database);
- `page`: the HTML page itself (cds/templates/handout.html, cds/static/handout.css).

The link carries the plan only: never a name, an id or anything read from the request's
free text. The web route is cds/web/handout.py.
"""
