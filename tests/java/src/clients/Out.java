package clients;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;

/** JSON lines on stdout, the results the pytest side asserts on (one object per line). */
final class Out {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private Out() {}

    /** An ordered map from alternating keys and values. */
    static Map<String, Object> map(Object... keysAndValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            m.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return m;
    }

    static synchronized void emit(Map<String, Object> line) {
        try {
            System.out.println(MAPPER.writeValueAsString(line));
        } catch (Exception e) {
            System.out.println("{\"error\": \"unserializable line\"}");
        }
        System.out.flush();
    }

    /** The class name of an exception, unwrapped from the ExecutionException of a future. */
    static String errorName(Throwable t) {
        Throwable cause = t instanceof ExecutionException && t.getCause() != null ? t.getCause() : t;
        return cause.getClass().getSimpleName();
    }

    static String trace(Throwable t) {
        StringWriter w = new StringWriter();
        t.printStackTrace(new PrintWriter(w));
        return w.toString();
    }

    /** Runs one scenario and emits its result, or the error it ended with, under its name. */
    static void scenario(String name, Callable<Map<String, Object>> body) {
        Map<String, Object> line = map("scenario", name);
        long start = System.nanoTime();
        try {
            line.putAll(body.call());
        } catch (Throwable t) {
            line.put("error", errorName(t));
            line.put("trace", trace(t));
        }
        line.put("elapsed_ms", (System.nanoTime() - start) / 1_000_000);
        emit(line);
    }
}
