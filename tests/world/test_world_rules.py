"""One test per validation rule: break the small valid expo once, expect file, key and line."""

from __future__ import annotations

import pytest

A, B, EXPO = "booths/a.toml", "booths/b.toml", "expo.toml"


def test_the_unbroken_expo_is_valid(world):
    assert world.problems() == []


def test_unknown_key_suggests_the_close_match(world):
    world.edit(A, 'tagline = "Wildflower honey"\n', 'tagline = "Wildflower honey"\ntaglne = "x"\n')
    problem = world.problem(A, "taglne")
    assert problem.line == world.line(A, "taglne")
    assert "unknown key" in problem.message and "'tagline'" in problem.message


def test_unknown_key_inside_an_array_of_tables(world):
    world.edit(A, "max_per_visitor = 2\n", "max_per_visitor = 2\nlimit = 2\n")
    problem = world.problem(A, "catalogue[1].limit")
    assert problem.line == world.line(A, "limit = 2")


@pytest.mark.parametrize("old, new, key, expected", [
    ("stock = 100", 'stock = "100"', "catalogue[0].stock", "expected an integer, got string '100'"),
    ('price = "4500"', "price = 4500", "catalogue[0].price", "write the price as a string"),
    ('exhibitor = "Altai Bee Farms"', "exhibitor = 42", "exhibitor", "expected a string"),
    ("size = [8, 6]", "size = [8]", "size", "expected [width, depth]"),
    ("position = [14, 12]", 'position = [14, "12"]', "position", "expected a number, got string"),
    ("scale = 0.4", "scale = true", "catalogue[0].display.scale", "got boolean"),
    ('role = "Beekeeper"', 'role = ["Beekeeper"]', "staff[0].role", "got array"),
])
def test_wrong_type(world, old, new, key, expected):
    world.edit(A, old, new)
    problem = world.problem(A, key)
    assert problem.line == world.line(A, new)
    assert expected in problem.message


def test_wrong_type_for_a_date(world):
    world.edit(EXPO, "starts = 2025-09-15", 'starts = "2025-09-15"')
    problem = world.problem(EXPO, "starts")
    assert problem.line == 3 and "no quotes" in problem.message


def test_missing_required_key_points_at_its_table(world):
    world.edit(A, 'name = "Honeycomb"\n', "")
    problem = world.problem(A, "catalogue[1].name")
    assert problem.line == world.line(A, 'sku = "COMB"') - 1  # the [[catalogue]] header
    assert problem.message == "missing required key"


def test_missing_top_level_key_has_no_line(world):
    world.edit(A, 'facing = "south"\n', "")
    problem = world.problem(A, "facing")
    assert problem.line is None


def test_duplicate_booth_id_across_files(world):
    world.edit(B, 'id = "b"', 'id = "a"')
    problem = world.problem(B, "id")
    assert problem.line == 1 and "booths/a.toml" in problem.message


def test_duplicate_sku_within_a_booth(world):
    world.edit(A, 'sku = "COMB"', 'sku = "HONEY"')
    problem = world.problem(A, "catalogue[1].sku")
    assert problem.line == 31
    assert "catalogue[0]" in problem.message


def test_booth_outside_its_hall(world):
    world.edit(B, "position = [26, 12]", "position = [58, 12]")
    problem = world.problem(B, "position")
    assert problem.line == 7 and "outside hall 'main'" in problem.message


def test_booth_overlapping_another_booth(world):
    world.edit(B, "position = [26, 12]", "position = [20, 12]")
    problem = world.problem(B, "position")
    assert problem.line == 7 and "overlaps booth 'a'" in problem.message


def test_booth_overlapping_a_portal(world):
    world.edit(B, "position = [26, 12]", "position = [52, 20]")
    problem = world.problem(B, "position")
    assert problem.line == 7 and "portal 'to-annex'" in problem.message


def test_booth_covering_the_spawn_point(world):
    world.edit(EXPO, "spawn = [30, 4]", "spawn = [14, 8]")
    problem = world.problem(A, "position")
    assert problem.line == 7 and "spawn point" in problem.message


def test_booth_covering_the_keynote_stage(world):
    world.edit(EXPO, "keynote = [30, 34]", "keynote = [26, 20]")
    problem = world.problem(B, "position")
    assert "keynote" in problem.message


def test_booth_covering_a_portal_arrival_point(world):
    world.edit(EXPO, "target = [54, 28]", "target = [26, 12]")
    problem = world.problem(B, "position")
    assert "arrival point" in problem.message


def test_booth_in_a_hall_that_does_not_exist(world):
    world.edit(A, 'hall = "main"', 'hall = "mian"')
    problem = world.problem(A, "hall")
    assert problem.line == 6 and "did you mean 'main'" in problem.message


def test_portal_to_an_unknown_hall(world):
    world.edit(EXPO, 'target_hall = "annex"', 'target_hall = "anex"')
    problem = world.problem(EXPO, "halls[0].portals[0].target_hall")
    assert problem.line == 18 and "'anex'" in problem.message


def test_portal_target_outside_the_target_hall(world):
    world.edit(EXPO, "target = [5, 10]", "target = [35, 10]")
    problem = world.problem(EXPO, "halls[0].portals[0].target")
    assert problem.line == 19 and "outside hall 'annex'" in problem.message


def test_portal_landing_inside_another_portal(world):
    world.edit(EXPO, "target = [5, 10]", "target = [2.5, 10]")
    problem = world.problem(EXPO, "halls[0].portals[0].target")
    assert "'to-main'" in problem.message


def test_spawn_outside_its_hall(world):
    world.edit(EXPO, "spawn = [15, 3]", "spawn = [15, 30]")
    problem = world.problem(EXPO, "halls[1].spawn")
    assert problem.line == world.line(EXPO, "spawn = [15, 30]")


def test_duplicate_hall_id(world):
    world.edit(EXPO, 'id = "annex"', 'id = "main"')
    problem = world.problem(EXPO, "halls[1].id")
    assert problem.line == 22 and "halls[0]" in problem.message


@pytest.mark.parametrize("price", ['"0"', '"-5"', '"abc"', '"NaN"'])
def test_price_not_a_positive_decimal(world, price):
    world.edit(A, 'price = "4500"', f"price = {price}")
    problem = world.problem(A, "catalogue[0].price")
    assert problem.line == world.line(A, f"price = {price}")


@pytest.mark.parametrize("currency, price", [("KZT", "4500.125"), ("VND", "7800.50"), ("USD", "0.001")])
def test_price_with_more_decimals_than_the_currency_allows(world, currency, price):
    world.edit(A, 'currency = "KZT"', f'currency = "{currency}"')
    world.edit(A, 'price = "7800.50"', f'price = "{price}"')
    problem = world.problem(A, "catalogue[1].price")
    assert problem.line == world.line(A, f'price = "{price}"')
    assert f"{currency} prices have at most" in problem.message


def test_trailing_zeros_do_not_count_as_decimals(world):
    world.edit(A, 'currency = "KZT"', 'currency = "VND"')
    world.edit(A, 'price = "7800.50"', 'price = "7800.00"')
    assert world.problems() == []


@pytest.mark.parametrize("code, expected", [("KZX", "unknown currency"), ("kzt", "unknown currency"),
                                             ("DEM", "not in use today")])
def test_unknown_currency(world, code, expected):
    world.edit(A, 'currency = "KZT"', f'currency = "{code}"')
    problem = world.problem(A, "currency")
    assert problem.line == 14 and expected in problem.message


def test_unknown_currency_on_a_product(world):
    world.edit(A, 'price = "4500"', 'price = "4500"\ncurrency = "XYZ"')
    problem = world.problem(A, "catalogue[0].currency")
    assert problem.line == world.line(A, 'currency = "XYZ"')


@pytest.mark.parametrize("code, expected", [("XX", "unknown country"), ("EU", "unknown country"),
                                             ("kz", "use upper case"), ("KAZ", "unknown country")])
def test_unknown_country(world, code, expected):
    world.edit(A, 'country = "KZ"', f'country = "{code}"')
    problem = world.problem(A, "country")
    assert problem.line == 3 and expected in problem.message


@pytest.mark.parametrize("key, snippet", [("banner", 'banner = "banners/b.png"'),
                                          ("catalogue[1].image", 'image = "products/honey.png"')])
def test_missing_asset_file(world, key, snippet):
    nth = 1 if key.startswith("catalogue[1]") else 0
    world.edit(A, snippet, snippet.replace(".png", "-gone.png"), nth=nth)
    problem = world.problem(A, key)
    assert problem.line == world.line(A, "-gone.png")
    assert "not found" in problem.message


def test_asset_path_may_not_leave_the_assets_directory(world):
    world.edit(A, 'logo = "logos/b.png"', 'logo = "../expo.toml"')
    assert "stay inside" in world.problem(A, "logo").message


def test_empty_catalogue(world):
    text = world.text(A)
    world.path(A).write_text(text[:text.index("[[staff]]")] + "catalogue = []\n", encoding="utf-8")
    problem = world.problem(A, "catalogue")
    assert problem.line == world.line(A, "catalogue = []") and "empty" in problem.message


@pytest.mark.parametrize("old, new, key", [
    ('primary = "#00afca"', 'primary = "#00afc"', "primary"),
    ('secondary = "#fec50c"', 'secondary = "yellow"', "secondary"),
    ('colour = "#f0a30a"', 'colour = "#f0a30z"', "catalogue[0].display.colour"),
    ('colour = "#e6b422"', 'colour = "e6b422"', "catalogue[1].display.colour"),
])
def test_bad_colour(world, old, new, key):
    world.edit(A, old, new)
    problem = world.problem(A, key)
    assert problem.line == world.line(A, new) and "#rrggbb" in problem.message


def test_bad_colour_in_a_hall_theme(world):
    world.edit(EXPO, 'walls = "#0e4d64"', 'walls = "#0e4d6"')
    problem = world.problem(EXPO, "halls[1].theme.walls")
    assert problem.line == 29


def test_negative_stock(world):
    world.edit(A, "stock = 20", "stock = -3")
    problem = world.problem(A, "catalogue[1].stock")
    assert problem.line == world.line(A, "stock = -3") and "at least 0" in problem.message


def test_limit_per_visitor_below_one(world):
    world.edit(A, "max_per_visitor = 5", "max_per_visitor = 0")
    problem = world.problem(A, "catalogue[0].max_per_visitor")
    assert problem.line == world.line(A, "max_per_visitor = 0") and "at least 1" in problem.message


def test_expo_ending_before_it_starts(world):
    world.edit(EXPO, "ends = 2025-09-21", "ends = 2025-09-01")
    problem = world.problem(EXPO, "ends")
    assert problem.line == 4 and "before it starts" in problem.message


@pytest.mark.parametrize("display, expected", [
    ('{ colour = "#f0a30a" }', "give either primitive"),
    ('{ primitive = "box", model = "products/honey.png" }', "not both"),
    ('{ primitive = "pyramid" }', "must be one of box, sphere, cylinder, cone"),
])
def test_display_needs_one_primitive_or_one_model(world, display, expected):
    world.edit(A, '{ primitive = "cylinder", colour = "#f0a30a", scale = 0.4 }', display)
    problems = [p for p in world.problems() if p.key.startswith("catalogue[0].display")]
    assert len(problems) == 1 and expected in problems[0].message
    assert problems[0].line == world.line(A, "display = {")


def test_ids_are_lower_case_slugs(world):
    world.edit(B, 'id = "b"', 'id = "Booth B"')
    assert "lower-case" in world.problem(B, "id").message


def test_malformed_toml_gives_line_and_column_and_other_files_are_still_checked(world):
    world.edit(A, 'tagline = "Wildflower honey"', 'tagline = "Wildflower honey')
    world.edit(B, "stock = 20", "stock = -1")
    problems = world.problems()
    syntax = [p for p in problems if p.file.endswith(A)]
    assert len(syntax) == 1
    assert (syntax[0].line, syntax[0].column, syntax[0].key) == (4, 28, "")
    assert "TOML syntax" in syntax[0].message and "(at line" not in syntax[0].message
    assert str(syntax[0]).startswith(str(world.path(A)) + ":4:28: TOML syntax")
    assert world.problem(B, "catalogue[1].stock").line == world.line(B, "stock = -1")


def test_malformed_toml_at_end_of_document(world):
    world.path(A).write_text('id = "a"\nsize = [8,\n', encoding="utf-8")
    problem = world.problems()[0]
    assert problem.file.endswith(A) and problem.line == 3 and problem.column == 1


def test_file_that_is_not_utf8(world):
    world.path(A).write_bytes(b'id = "a"\nexhibitor = "Caf\xe9"\n')
    problem = world.problems()[0]
    assert (problem.line, problem.column) == (2, 17) and "UTF-8" in problem.message


def test_directory_without_expo_toml(tmp_path):
    from world import check_expo
    for path in (tmp_path, tmp_path / "nowhere"):
        expo, problems = check_expo(path)
        assert expo is None and [p.message for p in problems] == ["no expo.toml in this directory"]


def test_naming_expo_toml_checks_its_directory(world):
    from world import check_expo
    assert check_expo(world.path(EXPO))[1] == []


def test_an_expo_needs_a_hall(world):
    text = world.text(EXPO)
    world.path(EXPO).write_text(text[:text.index("[[halls]]")] + "halls = []\n", encoding="utf-8")
    problem = world.problem(EXPO, "halls")
    assert problem.line == 6 and "at least one hall" in problem.message


def test_one_file_broken_in_several_ways_reports_every_problem(world):
    for old, new in [('country = "KZ"', 'country = "QQ"'), ("size = [8, 6]", "size = [8, -6]"),
                     ('facing = "south"', 'facing = "sout"'), ('price = "4500"', 'price = "4500.001"'),
                     ("stock = 20", "stock = -1"), ('sku = "COMB"', 'sku = "HONEY"'),
                     ('colour = "#e6b422"', 'colour = "#e6b42"')]:
        world.edit(A, old, new)
    world.edit(A, 'logo = "logos/b.png"', 'logo = "logos/b.png"\nlogoo = "x"')
    problems = [p for p in world.problems() if p.file.endswith(A)]
    assert {(p.key, p.line) for p in problems} == {
        ("country", 3), ("size", 8), ("facing", 9), ("logoo", 14), ("catalogue[0].price", 25),
        ("catalogue[1].sku", 32), ("catalogue[1].stock", 36), ("catalogue[1].display.colour", 42),
    }
    assert "did you mean 'south'" in next(p.message for p in problems if p.key == "facing")


def test_load_expo_raises_with_every_problem(world):
    from world import WorldError, load_expo
    world.edit(A, "stock = 20", "stock = -1")
    world.edit(B, "stock = 20", "stock = -1")
    with pytest.raises(WorldError) as raised:
        load_expo(world.root)
    assert len(raised.value.problems) == 2
    assert "booths/a.toml" in str(raised.value) and "booths/b.toml" in str(raised.value)


def test_an_unreadable_expo_toml_does_not_blame_every_booth(world):
    world.edit(EXPO, "[[halls]]", "[[halls]", nth=1)
    problems = world.problems()
    assert [(p.file.endswith(EXPO), p.key) for p in problems] == [(True, "")]


TRANSLATED = '''
[translations.zh_Hans]
exhibitor = "阿尔泰蜂场"
tagline = "野花蜜"

[translations.ru]
description = "Пасечники Алтая."
'''


def test_translated_booth_words_load_and_fall_back_to_the_exhibitors_own(world):
    world.path(A).write_text(world.text(A) + TRANSLATED, encoding="utf-8")
    assert world.problems() == []
    from world import load_expo

    booth = load_expo(world.root).booth("a")
    assert booth.text_in("zh_Hans") == ("阿尔泰蜂场", "野花蜜", "Beekeepers in the Altai.")
    assert booth.text_in("zh-Hans") == booth.text_in("zh") == booth.text_in("zh_Hans")
    assert booth.text_in("ru") == ("Altai Bee Farms", "Wildflower honey", "Пасечники Алтая.")
    assert booth.text_in("ms") == booth.text_in("en") == ("Altai Bee Farms", "Wildflower honey", "Beekeepers in the Altai.")


@pytest.mark.parametrize("snippet, key, expected", [
    ('[translations.Chinese]\ntagline = "x"\n', "translations.Chinese", "not a language tag"),
    ('[translations.ru]\ntaglin = "x"\n', "translations.ru.taglin", "unknown key (did you mean 'tagline'?)"),
    ('[translations.ru]\ntagline = ""\n', "translations.ru.tagline", "must not be empty"),
    ("[translations.ru]\n", "translations.ru", "needs at least one of exhibitor, tagline, description"),
    ('[translations]\nru = "Мёд"\n', "translations.ru", "expected a table"),
    ('[translations.zh_Hans]\ntagline = "x"\n[translations.zh-Hans]\ntagline = "y"\n', "translations.zh-Hans",
     "a second entry for 'zh_Hans'"),
])
def test_a_bad_translation_is_reported_where_it_is(world, snippet, key, expected):
    world.path(A).write_text(world.text(A) + "\n" + snippet, encoding="utf-8")
    problem = world.problem(A, key)
    assert expected in problem.message, problem


def test_an_unknown_category_names_the_ones_there_are(world):
    world.edit(A, 'country = "KZ"\n', 'country = "KZ"\ncategory = "drink"\n')
    problem = world.problem(A, "category")
    assert problem.line == world.line(A, "category =")
    assert "must be one of food, drinks, textiles" in problem.message and "(did you mean 'drinks'?)" in problem.message
