import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import org.apache.kafka.common.utils.Exit;

/**
 * Runs Kafka's command-line tools one after another in one JVM, so that a test can run dozens of
 * them without a JVM start each (tests/java/test_kafka_tools_commands.py).
 *
 * Each stdin line is a main class and its arguments, separated by tabs. For each, the tool's
 * stdout and stderr are captured and written back as "### OUT", the output, "### ERR", the
 * errors, "### EXIT n". A tool ends through Kafka's Exit, which here throws instead of ending the
 * JVM; some tools catch that and exit again, so the first exit counts: its code, and the output
 * up to it, which is what the tool's own process would have printed. A main that returns exits 0;
 * one that throws, -1.
 */
public final class ToolShell {
    private static final class Exited extends RuntimeException {
        Exited() {
            super(null, null, false, false);
        }
    }

    private static ByteArrayOutputStream out;
    private static ByteArrayOutputStream err;
    private static String[] atExit;  // stdout, stderr and code at the first exit

    private static void exit(int code) {
        if (atExit == null) {
            System.out.flush();
            System.err.flush();
            atExit = new String[] {out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8),
                                   Integer.toString(code)};
        }
        throw new Exited();
    }

    public static void main(String[] unused) throws Exception {
        PrintStream realOut = System.out;
        PrintStream realErr = System.err;
        // Logging starts now, while System.err is the real one: the tools' log lines go there.
        org.slf4j.LoggerFactory.getLogger(ToolShell.class).debug("ToolShell started");
        Exit.setExitProcedure((code, message) -> exit(code));
        Exit.setHaltProcedure((code, message) -> exit(code));
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] words = line.split("\t", -1);
            out = new ByteArrayOutputStream();
            err = new ByteArrayOutputStream();
            atExit = null;
            int code = 0;
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            try {
                Class.forName(words[0]).getMethod("main", String[].class)
                    .invoke(null, (Object) Arrays.copyOfRange(words, 1, words.length));
            } catch (InvocationTargetException e) {
                if (!(e.getCause() instanceof Exited)) {
                    code = -1;
                    e.getCause().printStackTrace(System.err);
                }
            } finally {
                System.out.flush();
                System.err.flush();
                System.setOut(realOut);
                System.setErr(realErr);
            }
            String[] result = atExit != null ? atExit : new String[] {
                out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8), Integer.toString(code)};
            realOut.print("### OUT\n" + result[0] + "### ERR\n" + result[1] + "### EXIT " + result[2] + "\n");
            realOut.flush();
        }
    }
}
