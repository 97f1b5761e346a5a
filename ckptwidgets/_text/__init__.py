"""Text and pictures shared by the command line, the widgets and the plots.

- :mod:`.format`: sizes, shapes, tables, statistics, labels that keep what tells keys apart.
- :mod:`.filter`: the one filter language (CLI ``--filter``, the widgets' filter boxes).
- :mod:`.fonts`: the plots' font family, with a CJK fallback.
- :mod:`.restore_plan`: ``repr`` and ``print`` of a restore plan.
- :mod:`.diagram`: the mapping diagram (checkpoint keys -> variables).
"""
