import numpy as np
import pytest

from jaxnas.data import ptb


def test_tokenize_appends_eos_per_line():
    assert ptb.tokenize(" a b \n\n c \n") == ["a", "b", "<eos>", "c", "<eos>"]


def test_shipped_corpus():
    c = ptb.load_corpus()
    assert (len(c.train), len(c.test)) == (73760, 82430)  # tokens including one <eos> per line
    assert c.valid is c.test and "train = valid.txt" in c.source
    assert len(c.vocab) == 7596  # distinct words of valid.txt and test.txt, <eos> and <unk> included
    assert c.vocab.decode(c.train[:5]) == ["consumers", "may", "want", "to", "move"]
    assert c.train[c.train == c.vocab.eos_id].size == 3370  # one per sentence
    assert c.vocab.words[c.vocab.unk_id] == "<unk>"


def test_vocab_unknown_words_and_order():
    v = ptb.build_vocab(["b", "a", "b"], ["c"])
    assert v.words == ("b", "a", "c", "<eos>", "<unk>")
    np.testing.assert_array_equal(v.encode(["a", "zzz", "c"]), [1, v.unk_id, 2])
    assert ptb.build_vocab(["x", "y", "y", "z", "z"], max_size=2).words == ("y", "z", "<eos>", "<unk>")
    with pytest.raises(ValueError, match="unique"):
        ptb.make_vocab(["a", "a"])


def test_batchify_rows_are_contiguous_streams():
    ids = np.arange(23)
    s = ptb.batchify(ids, 4)
    assert s.shape == (4, 5)
    np.testing.assert_array_equal(s[1], [5, 6, 7, 8, 9])  # row 1 continues where row 0 ends; the tail 20..22 is dropped
    with pytest.raises(ValueError, match="too few"):
        ptb.batchify(np.arange(5), 4)


def test_bptt_windows_shift_targets_by_one():
    s = ptb.batchify(np.arange(30), 2)  # rows 0..14 and 15..29
    assert ptb.num_windows(s, 4) == 4 and ptb.num_windows(s, 4, drop_remainder=True) == 3
    x, y = ptb.bptt_window(s, 0, 4)
    np.testing.assert_array_equal(x, [[0, 1, 2, 3], [15, 16, 17, 18]])
    np.testing.assert_array_equal(y, x + 1)
    x, y = ptb.bptt_window(s, 3, 4)  # the last window is shorter: inputs 12, 13 -> targets 13, 14
    np.testing.assert_array_equal(x, [[12, 13], [27, 28]])
    np.testing.assert_array_equal(y, [[13, 14], [28, 29]])
    xp, yp, mask = ptb.padded_window(s, 3, 4)
    assert xp.shape == yp.shape == mask.shape == (2, 4)
    np.testing.assert_array_equal(mask, [[1, 1, 0, 0]] * 2)
    with pytest.raises(ValueError, match="out of range"):
        ptb.bptt_window(s, 4, 4)


def test_corpus_from_a_directory(tmp_path):
    (tmp_path / "train.txt").write_text("the cat sat\nthe dog\n")
    (tmp_path / "ptb.valid.txt").write_text("the cat\n")
    (tmp_path / "test.txt").write_text("a dog sat\n")
    c = ptb.load_corpus(tmp_path)
    assert c.vocab.decode(c.train) == ["the", "cat", "sat", "<eos>", "the", "dog", "<eos>"]
    assert c.vocab.decode(c.test) == ["a", "dog", "sat", "<eos>"]
    (tmp_path / "test.txt").unlink()
    with pytest.raises(ValueError, match="no test.txt"):
        ptb.load_corpus(tmp_path)
    with pytest.raises(ValueError, match="not found"):
        ptb.load_corpus(tmp_path / "missing")
    with pytest.raises(ValueError, match="only valid and test"):
        ptb.shipped_path("train")
