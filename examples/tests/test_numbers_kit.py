from numbers_kit import running_max, second_largest


def test_second_largest():
    assert second_largest([3, 1, 4, 1, 5]) == 4
    assert second_largest([5, 5, 4]) == 4
    assert second_largest([7, 7]) is None
    assert second_largest([]) is None
    assert second_largest([-2, -1]) == -2


def test_running_max():
    assert running_max([1, 3, 2, 5, 4]) == [1, 3, 3, 5, 5]
    assert running_max([]) == []
