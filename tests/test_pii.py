"""crmnb.present.masking: personal data is masked in everything shown or shared."""

from __future__ import annotations

import pandas as pd
import pytest

from crmnb.intake.schema import TABLES
from crmnb.present.masking import mask_companies, mask_company, mask_email, mask_frame, mask_name, mask_phone


@pytest.mark.parametrize(
    "raw,masked",
    [
        ("13812345678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("12345", "*****"),
    ],
)
def test_mask_phone(raw, masked):
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    "raw,masked",
    [
        ("zhangwei88@example.com", "z***@example.com"),
        (" Li.Na@corp.cn", "L***@corp.cn"),
    ],
)
def test_mask_email(raw, masked):
    assert mask_email(raw) == masked


@pytest.mark.parametrize("raw,masked", [("张伟", "张*"), ("欧阳娜娜", "欧***"), (" 李娜 ", "李*")])
def test_mask_name(raw, masked):
    assert mask_name(raw) == masked


@pytest.mark.parametrize(
    "raw,masked",
    [
        ("杭州云启科技有限公司", "*科技有限公司"),
        ("上海某某贸易有限责任公司", "*贸易有限责任公司"),
        ("深圳华信股份有限公司", "*股份有限公司"),
        ("Acme Trading Ltd", "******"),  # no Chinese legal form: everything hidden
    ],
)
def test_mask_company(raw, masked):
    assert mask_company(raw) == masked


@pytest.mark.parametrize("dtype", ["str", "string", object])
def test_a_column_of_companies_is_masked_as_each_name_is(dtype):
    """The workbook masks a whole customer list at once: each name comes out as mask_company gives it, with the
    names a line break ends (where Python's $ matches before it), empty and missing names among them."""
    names = [
        "杭州云启科技有限公司",
        "上海某某贸易有限责任公司",
        "深圳华信股份有限公司",
        "Acme Trading Ltd",
        "有限公司",
        "华为",
        "北京某某科技有限公司\n",
        "科技有限公司 分公司",
        "",
        None,
    ]
    column = pd.Series(names * 3, dtype=dtype)
    got = mask_companies(column)
    each = [mask_company(v) if isinstance(v, str) else None for v in column]
    assert [v if isinstance(v, str) else None for v in got] == each
    assert got[6] == "*科技有限公司" and got.isna().tolist() == column.isna().tolist()
    assert not any("云启" in v or "Acme" in v for v in got.dropna())


@pytest.mark.parametrize("fn", [mask_phone, mask_email, mask_name, mask_company])
def test_missing_values_stay_missing(fn):
    assert fn(None) is None
    assert fn("") == ""


def test_malformed_email_is_not_shown_in_full():
    # an e-mail field holding something else must not leak it unmasked
    for raw in ("zhangwei88#example.com", "13812345678"):
        out = mask_email(raw)
        assert out != raw
        assert "zhangwei88" not in out and "12345678" not in out


def test_mask_frame_masks_every_pii_column_of_every_table():
    for name, spec in TABLES.items():
        if not spec.pii:
            continue
        values = {
            "name": "张伟",
            "contact_name": "王芳",
            "company": "杭州云启科技有限公司",
            "phone": "13812345678",
            "email": "zhangwei88@example.com",
        }
        df = pd.DataFrame([{c: values[c] for c in spec.pii} | {spec.key: "X1", "city": "杭州"}])
        original = df.copy()
        out = mask_frame(df)
        for col in spec.pii:
            assert out.loc[0, col] != values[col], (name, col)
        text = " ".join(map(str, out.loc[0]))
        for secret in ("张伟", "王芳", "云启", "12345678", "zhangwei88"):
            assert secret not in text, (name, secret)
        assert out.loc[0, spec.key] == "X1"  # other columns untouched
        pd.testing.assert_frame_equal(df, original)  # the input is not changed


def test_mask_frame_keeps_missing_values_missing():
    df = pd.DataFrame({"phone": ["13812345678", None], "email": [None, "a@b.cn"]})
    out = mask_frame(df)
    assert out.loc[0, "phone"] == "138****5678" and pd.isna(out.loc[1, "phone"])
    assert pd.isna(out.loc[0, "email"]) and out.loc[1, "email"] == "a***@b.cn"
