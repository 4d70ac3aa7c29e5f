// The catalog calls a JDBC tool (DBeaver, Metabase, DataGrip...) makes by itself, through the
// PostgreSQL JDBC driver (pgjdbc) against `sqlml serve`, plus real queries. tests/test_jdbc.py
// compiles this file with javac at test time and asserts on what it prints: one line per row,
// "section<TAB>value<TAB>value...", and "ERROR<TAB>section<TAB>message" for a call that failed
// (each call is tried on its own, so one failure does not hide the others).
//
// Usage: java -cp postgresql.jar:DIR SqlmlMetaData PORT PASSWORD TABLE FUNCTION
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public class SqlmlMetaData {
    interface Call {
        ResultSet run() throws SQLException;
    }

    static String clean(Object value) {
        if (value == null) {
            return "NULL";
        }
        return value.toString().replace('\t', ' ').replace('\n', ' ');
    }

    /** Prints the named columns of every row of a result, under a section name. */
    static void rows(String section, Call call, String... columns) {
        try (ResultSet rs = call.run()) {
            int count = 0;
            while (rs.next()) {
                StringBuilder line = new StringBuilder(section);
                for (String column : columns) {
                    line.append('\t').append(clean(rs.getObject(column)));
                }
                System.out.println(line);
                count++;
            }
            System.out.println("COUNT\t" + section + "\t" + count);
        } catch (SQLException e) {
            System.out.println("ERROR\t" + section + "\t" + clean(e.getMessage()));
        }
    }

    /** Prints every column of every row of a query, with the result's column types. */
    static void query(Connection con, String section, String sql) {
        try (Statement st = con.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            ResultSetMetaData md = rs.getMetaData();
            for (int i = 1; i <= md.getColumnCount(); i++) {
                System.out.println(section + ".type\t" + md.getColumnLabel(i) + "\t"
                        + md.getColumnTypeName(i) + "\t" + md.getColumnType(i));
            }
            while (rs.next()) {
                StringBuilder line = new StringBuilder(section);
                for (int i = 1; i <= md.getColumnCount(); i++) {
                    line.append('\t').append(clean(rs.getObject(i)));
                }
                System.out.println(line);
            }
        } catch (SQLException e) {
            System.out.println("ERROR\t" + section + "\t" + clean(e.getMessage()));
        }
    }

    public static void main(String[] args) throws SQLException {
        String port = args[0];
        String table = args[2];
        String function = args[3];
        Properties props = new Properties();
        props.setProperty("user", "sqlml");
        props.setProperty("password", args[1]);
        String url = "jdbc:postgresql://127.0.0.1:" + port + "/shop";
        try (Connection con = DriverManager.getConnection(url, props)) {
            DatabaseMetaData md = con.getMetaData();
            System.out.println("product\t" + md.getDatabaseProductName() + "\t"
                    + md.getDatabaseProductVersion());
            try {
                System.out.println("keywords\t" + md.getSQLKeywords());
                System.out.println("maxnamelength\t" + md.getMaxColumnNameLength());
            } catch (SQLException e) {
                System.out.println("ERROR\tkeywords\t" + clean(e.getMessage()));
            }
            rows("schemas", () -> md.getSchemas(), "TABLE_SCHEM");
            rows("catalogs", () -> md.getCatalogs(), "TABLE_CAT");
            rows("tabletypes", () -> md.getTableTypes(), "TABLE_TYPE");
            rows("tables", () -> md.getTables(null, "main", "%", new String[] {"TABLE", "VIEW"}),
                    "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE");
            rows("columns", () -> md.getColumns(null, "main", table, "%"), "COLUMN_NAME",
                    "DATA_TYPE", "TYPE_NAME", "COLUMN_SIZE", "DECIMAL_DIGITS", "NULLABLE",
                    "ORDINAL_POSITION");
            rows("primarykeys", () -> md.getPrimaryKeys(null, "main", table), "COLUMN_NAME");
            rows("indexinfo", () -> md.getIndexInfo(null, "main", table, false, true),
                    "INDEX_NAME", "COLUMN_NAME");
            rows("importedkeys", () -> md.getImportedKeys(null, "main", table), "FKCOLUMN_NAME");
            rows("exportedkeys", () -> md.getExportedKeys(null, "main", table), "FKCOLUMN_NAME");
            rows("typeinfo", () -> md.getTypeInfo(), "TYPE_NAME", "DATA_TYPE", "PRECISION");
            rows("functions", () -> md.getFunctions(null, "main", function), "FUNCTION_SCHEM",
                    "FUNCTION_NAME", "FUNCTION_TYPE");
            rows("functioncolumns", () -> md.getFunctionColumns(null, "main", function, "%"),
                    "FUNCTION_NAME", "COLUMN_NAME", "COLUMN_TYPE", "TYPE_NAME");
            rows("procedures", () -> md.getProcedures(null, "main", function),
                    "PROCEDURE_SCHEM", "PROCEDURE_NAME");
            rows("procedurecolumns", () -> md.getProcedureColumns(null, "main", function, "%"),
                    "PROCEDURE_NAME", "COLUMN_NAME", "COLUMN_TYPE", "TYPE_NAME");
            rows("macros", () -> md.getFunctions(null, "main", "ml\\_%"), "FUNCTION_NAME");
            rows("columnprivileges", () -> md.getColumnPrivileges(null, "main", table, "%"),
                    "COLUMN_NAME");
            rows("tableprivileges", () -> md.getTablePrivileges(null, "main", table),
                    "TABLE_NAME", "PRIVILEGE");
            rows("bestrowid", () -> md.getBestRowIdentifier(null, "main", table,
                    DatabaseMetaData.bestRowSession, true), "COLUMN_NAME");
            rows("udts", () -> md.getUDTs(null, "main", "%", null), "TYPE_NAME");
            query(con, "predict", "SELECT predict_churn(c) AS churn FROM customers c "
                    + "ORDER BY customer_id LIMIT 3");
            query(con, "events", "SELECT * FROM " + table + " ORDER BY 1");
            try (PreparedStatement ps = con.prepareStatement(
                    "SELECT count(*) FROM customers WHERE tenure_months > ?")) {
                for (int i = 0; i < 6; i++) {  // past prepareThreshold: a server-side statement
                    ps.setInt(1, 12);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        System.out.println("prepared\t" + i + "\t" + rs.getLong(1));
                    }
                }
            } catch (SQLException e) {
                System.out.println("ERROR\tprepared\t" + clean(e.getMessage()));
            }
        }
    }
}
