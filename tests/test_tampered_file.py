"""A .duckdb file from someone else: a tampered artifact is refused, never run."""

import hashlib
import pickle

import pytest

import sqlml


class Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/sqlml_pwned_marker",))


def tamper(path, blob: bytes, fix_checksum: bool):
    con = sqlml.connect(path)
    con.execute("CREATE TABLE customers AS SELECT range AS customer_id, range % 7 AS age, "
                "range % 3 = 0 AS churned FROM range(200)")
    sqlml.create_model(con, "churn", "customers", target="churned", model_type="random_forest")
    sha = hashlib.sha256(blob).hexdigest() if fix_checksum else "0" * 64
    con.execute("UPDATE sqlml.model_versions SET artifact = ?, artifact_sha256 = ?", [blob, sha])
    con.close()
    return sqlml.connect(path)  # a fresh process would start from here: nothing cached


def test_checksum_mismatch_is_refused(db_path):
    con = tamper(db_path, b"not the model", fix_checksum=False)
    with pytest.raises(Exception, match=r"ArtifactError: model 'churn' version 1: the stored "
                                        r"artifact does not match its recorded checksum"):
        con.execute("SELECT predict_churn(c) FROM customers c").fetchall()


def test_pickle_payload_is_refused_and_not_run(db_path):
    import os

    marker = "/tmp/sqlml_pwned_marker"
    if os.path.exists(marker):
        os.remove(marker)
    con = tamper(db_path, pickle.dumps(Boom()), fix_checksum=True)
    with pytest.raises(Exception, match=r"ArtifactError: model 'churn' version 1"):
        con.execute("SELECT predict_churn(c) FROM customers c").fetchall()
    assert not os.path.exists(marker)


def test_out_of_bounds_tree_is_refused(db_path):
    import io
    import zipfile

    import numpy as np

    con = sqlml.connect(db_path)
    con.execute("CREATE TABLE customers AS SELECT range AS customer_id, range % 7 AS age, "
                "range % 3 = 0 AS churned FROM range(200)")
    sqlml.create_model(con, "churn", "customers", target="churned", model_type="random_forest")
    blob = con.execute("SELECT artifact FROM sqlml.model_versions").fetchall()[0][0]
    con.close()
    src = zipfile.ZipFile(io.BytesIO(blob))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
        done = False
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith(".npy") and not done:
                arr = np.load(io.BytesIO(data), allow_pickle=False)
                if arr.dtype.names and "left_child" in arr.dtype.names and len(arr) > 1:
                    arr["left_child"][0] = 10**9
                    buf = io.BytesIO()
                    np.save(buf, arr, allow_pickle=False)
                    data, done = buf.getvalue(), True
            dst.writestr(info, data)
    assert done, "no tree node array found to tamper with"
    con = sqlml.connect(db_path)
    bad = out.getvalue()
    con.execute("UPDATE sqlml.model_versions SET artifact = ?, artifact_sha256 = ?",
                [bad, hashlib.sha256(bad).hexdigest()])
    with pytest.raises(Exception, match=r"ArtifactError: .*tree .* of RandomForestClassifier.*"
                                        r"Retrain the model with sqlml"):
        con.execute("SELECT predict_churn(c) FROM customers c").fetchall()
