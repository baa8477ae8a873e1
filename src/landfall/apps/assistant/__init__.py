"""The customer-service assistant: an intent classifier with out-of-scope rejection, vetted
answer templates, a hybrid-retrieval knowledge base, a grounded generator and the guard, as
one run directory (``landfall assistant build`` / ``eval`` / ``serve``)."""
