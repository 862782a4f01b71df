package clients;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HexFormat;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java producer and consumer against a broker, one scenario after another in one JVM:
 * every codec, idempotence with acks=all, headers, CreateTime and LogAppendTime timestamps,
 * messages of several MiB, seek and offsetsForTimes. Args: bootstrap, topic prefix.
 * Each scenario creates its own topics and prints one JSON line (Out.scenario).
 */
public final class ClientScenarios {
    static String bootstrap;
    static String prefix;
    static final int MIB = 1024 * 1024;

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        prefix = args[1];
        for (String codec : List.of("none", "gzip", "snappy", "lz4", "zstd")) {
            Out.scenario("codec-" + codec, () -> codec(codec));
        }
        Out.scenario("broker-recompression", ClientScenarios::brokerRecompression);
        Out.scenario("idempotent-acks-all", ClientScenarios::idempotent);
        Out.scenario("acks-0-and-1", ClientScenarios::acksZeroAndOne);
        Out.scenario("headers", ClientScenarios::headers);
        Out.scenario("create-time", ClientScenarios::createTime);
        Out.scenario("log-append-time", ClientScenarios::logAppendTime);
        Out.scenario("large-messages", ClientScenarios::largeMessages);
        Out.scenario("seek-offsets-for-times", ClientScenarios::seekAndOffsetsForTimes);
        Out.scenario("out-of-range", ClientScenarios::outOfRange);
    }

    static Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return Admin.create(p);
    }

    static void createTopic(String topic, int partitions, Map<String, String> configs) throws Exception {
        try (Admin admin = admin()) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1).configs(configs))).all().get();
        }
    }

    static KafkaProducer<byte[], byte[]> producer(Object... settings) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        for (int i = 0; i < settings.length; i += 2) {
            p.put(settings[i], settings[i + 1]);
        }
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    static KafkaConsumer<byte[], byte[]> consumer(Object... settings) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        for (int i = 0; i < settings.length; i += 2) {
            p.put(settings[i], settings[i + 1]);
        }
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /** Every record of the partitions from their beginning up to `count` records (30 s at most). */
    static List<ConsumerRecord<byte[], byte[]>> readAll(String topic, int partitions, int count, Object... settings) {
        try (KafkaConsumer<byte[], byte[]> c = consumer(settings)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 30_000;
            while (got.size() < count && System.currentTimeMillis() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            return got;
        }
    }

    static String utf8(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String sha256(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    /** 300 compressible records in batches of the codec, read back by the Java consumer. */
    static Map<String, Object> codec(String codec) throws Exception {
        String topic = prefix + "-codec-" + codec;
        createTopic(topic, 1, Map.of());
        List<Long> offsets = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> p = producer(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                ProducerConfig.LINGER_MS_CONFIG, "100")) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < 300; i++) {
                sent.add(p.send(new ProducerRecord<>(topic, bytes("k" + i), bytes(("value-" + i + "-").repeat(20)))));
            }
            for (Future<RecordMetadata> f : sent) {
                offsets.add(f.get().offset());
            }
        }
        List<String> values = new ArrayList<>();
        List<Long> consumed = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : readAll(topic, 1, 300)) {
            values.add(utf8(r.value()).substring(0, utf8(r.value()).indexOf('-', 6)));
            consumed.add(r.offset());
        }
        return Out.map("topic", topic, "offsets", offsets, "consumed_offsets", consumed, "values", values);
    }

    /** A topic with compression.type=lz4 recompresses the producer's gzip batches; the consumer reads lz4. */
    static Map<String, Object> brokerRecompression() throws Exception {
        String topic = prefix + "-recompressed";
        createTopic(topic, 1, Map.of("compression.type", "lz4"));
        try (KafkaProducer<byte[], byte[]> p = producer(ProducerConfig.COMPRESSION_TYPE_CONFIG, "gzip",
                ProducerConfig.LINGER_MS_CONFIG, "100")) {
            for (int i = 0; i < 100; i++) {
                p.send(new ProducerRecord<>(topic, 0, bytes("k" + i), bytes("recompressed-" + i)));
            }
            p.flush();
        }
        List<String> values = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : readAll(topic, 1, 100)) {
            values.add(utf8(r.key()) + "=" + utf8(r.value()));
        }
        return Out.map("topic", topic, "values", values);
    }

    /** acks=0 (no response at all) and acks=1 with retries off: the records all land, in order. */
    static Map<String, Object> acksZeroAndOne() throws Exception {
        String topic = prefix + "-acks";
        createTopic(topic, 1, Map.of());
        List<Long> acked = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> p = producer(ProducerConfig.ACKS_CONFIG, "0",
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false")) {
            for (int i = 0; i < 50; i++) {
                acked.add(p.send(new ProducerRecord<>(topic, 0, null, bytes("zero-" + i))).get().offset());
            }
        }
        try (KafkaProducer<byte[], byte[]> p = producer(ProducerConfig.ACKS_CONFIG, "1",
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false")) {
            for (int i = 0; i < 50; i++) {
                acked.add(p.send(new ProducerRecord<>(topic, 0, null, bytes("one-" + i))).get().offset());
            }
        }
        List<String> values = new ArrayList<>();
        List<Long> offsets = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : readAll(topic, 1, 100)) {
            values.add(utf8(r.value()));
            offsets.add(r.offset());
        }
        return Out.map("topic", topic, "acked", acked, "values", values, "offsets", offsets);
    }

    /** acks=all and enable.idempotence with 5 requests in flight: every record once, in order. */
    static Map<String, Object> idempotent() throws Exception {
        String topic = prefix + "-idempotent";
        createTopic(topic, 3, Map.of());
        Map<Integer, List<Long>> offsets = new TreeMap<>();
        try (KafkaProducer<byte[], byte[]> p = producer(ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true",
                ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "5",
                ProducerConfig.BATCH_SIZE_CONFIG, "2048", ProducerConfig.LINGER_MS_CONFIG, "5")) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < 3000; i++) {
                sent.add(p.send(new ProducerRecord<>(topic, i % 3, null, bytes("v" + i))));
            }
            for (Future<RecordMetadata> f : sent) {
                RecordMetadata m = f.get();
                offsets.computeIfAbsent(m.partition(), k -> new ArrayList<>()).add(m.offset());
            }
        }
        Map<Integer, List<String>> values = new TreeMap<>();
        for (ConsumerRecord<byte[], byte[]> r : readAll(topic, 3, 3000)) {
            values.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(utf8(r.value()));
        }
        return Out.map("topic", topic, "offsets", offsets, "values", values);
    }

    /** Headers: several, a repeated key, a null value, an empty value, non-ASCII keys. */
    static Map<String, Object> headers() throws Exception {
        String topic = prefix + "-headers";
        createTopic(topic, 1, Map.of());
        List<Header> headers = List.of(new RecordHeader("trace", bytes("abc")), new RecordHeader("dup", bytes("1")),
                new RecordHeader("dup", bytes("2")), new RecordHeader("nothing", (byte[]) null),
                new RecordHeader("empty", new byte[0]), new RecordHeader("clé", bytes("välue")));
        try (KafkaProducer<byte[], byte[]> p = producer()) {
            p.send(new ProducerRecord<>(topic, 0, bytes("k"), bytes("with"), headers)).get();
            p.send(new ProducerRecord<>(topic, 0, bytes("k"), bytes("without"))).get();
        }
        List<Object> got = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : readAll(topic, 1, 2)) {
            List<Object> hs = new ArrayList<>();
            for (Header h : r.headers()) {
                hs.add(Arrays.asList(h.key(), h.value() == null ? null : utf8(h.value())));
            }
            got.add(Out.map("value", utf8(r.value()), "headers", hs));
        }
        return Out.map("topic", topic, "records", got);
    }

    /** CreateTime: the producer's own timestamps come back unchanged, out of order too. */
    static Map<String, Object> createTime() throws Exception {
        String topic = prefix + "-create-time";
        createTopic(topic, 1, Map.of());
        long base = 1_600_000_000_000L;
        List<Long> sentTs = List.of(base, base + 5000, base - 86_400_000L, base + 1);
        List<Long> acked = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> p = producer()) {
            for (long ts : sentTs) {
                acked.add(p.send(new ProducerRecord<>(topic, 0, ts, null, bytes("t" + ts))).get().timestamp());
            }
        }
        List<Object> got = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : readAll(topic, 1, sentTs.size())) {
            got.add(Arrays.asList(r.timestamp(), r.timestampType().toString()));
        }
        return Out.map("topic", topic, "sent", sentTs, "acked", acked, "consumed", got);
    }

    /** A LogAppendTime topic: the broker stamps its clock; the ack and the consumer agree. */
    static Map<String, Object> logAppendTime() throws Exception {
        String topic = prefix + "-log-append-time";
        createTopic(topic, 1, Map.of("message.timestamp.type", "LogAppendTime"));
        long before = System.currentTimeMillis();
        List<Long> acked = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> p = producer(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4")) {
            for (int i = 0; i < 3; i++) {
                acked.add(p.send(new ProducerRecord<>(topic, 0, 1_000L + i, null, bytes("x" + i))).get().timestamp());
            }
        }
        long after = System.currentTimeMillis();
        List<Object> got = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : readAll(topic, 1, 3)) {
            got.add(Arrays.asList(r.timestamp(), r.timestampType().toString()));
        }
        return Out.map("topic", topic, "before", before, "after", after, "acked", acked, "consumed", got);
    }

    /**
     * Records of 3 and 6 MiB through a topic with max.message.bytes 8 MiB and a producer with
     * max.request.size 16 MiB; one of 9 MiB is refused by the broker (RecordTooLargeException).
     */
    static Map<String, Object> largeMessages() throws Exception {
        String topic = prefix + "-large";
        createTopic(topic, 1, Map.of("max.message.bytes", String.valueOf(8 * MIB)));
        Random random = new Random(42);
        List<byte[]> values = new ArrayList<>();
        for (int size : List.of(3 * MIB, 6 * MIB, 100)) {
            byte[] v = new byte[size];
            random.nextBytes(v);
            values.add(v);
        }
        List<String> sentDigests = new ArrayList<>();
        String tooLarge;
        try (KafkaProducer<byte[], byte[]> p = producer(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, String.valueOf(16 * MIB),
                ProducerConfig.BUFFER_MEMORY_CONFIG, String.valueOf(64 * MIB))) {
            for (byte[] v : values) {
                p.send(new ProducerRecord<>(topic, 0, null, v)).get();
                sentDigests.add(sha256(v));
            }
            try {
                p.send(new ProducerRecord<>(topic, 0, null, new byte[9 * MIB])).get();
                tooLarge = "accepted";
            } catch (Exception e) {
                tooLarge = Out.errorName(e);
            }
        }
        List<String> digests = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : readAll(topic, 1, values.size())) {
            digests.add(sha256(r.value()));
        }
        return Out.map("topic", topic, "sent", sentDigests, "consumed", digests, "too_large", tooLarge);
    }

    /** The first record a consumer at `from` gets, or the error of its poll. */
    static Object firstAfterSeek(TopicPartition tp, long from, String reset) {
        try (KafkaConsumer<byte[], byte[]> c = consumer(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, reset)) {
            c.assign(List.of(tp));
            c.seek(tp, from);
            long deadline = System.currentTimeMillis() + 15_000;
            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    return Arrays.asList(r.offset(), utf8(r.value()));
                }
            }
            return null;
        } catch (Exception e) {
            return Out.errorName(e);
        }
    }

    /** A position below the log start offset (after deleteRecords): auto.offset.reset decides. */
    static Map<String, Object> outOfRange() throws Exception {
        String topic = prefix + "-out-of-range";
        createTopic(topic, 1, Map.of());
        try (KafkaProducer<byte[], byte[]> p = producer()) {
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, 0, null, bytes("o" + i)));
            }
            p.flush();
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin admin = admin()) {
            admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(6))).all().get();
        }
        return Out.map("topic", topic, "earliest", firstAfterSeek(tp, 2, "earliest"),
                "beyond_end", firstAfterSeek(tp, 50, "none"), "none", firstAfterSeek(tp, 2, "none"));
    }

    /** offsetsForTimes finds the first record at or after a time; seek moves the fetch position. */
    static Map<String, Object> seekAndOffsetsForTimes() throws Exception {
        String topic = prefix + "-seek";
        createTopic(topic, 1, Map.of());
        long base = System.currentTimeMillis() - 60_000;
        try (KafkaProducer<byte[], byte[]> p = producer(ProducerConfig.LINGER_MS_CONFIG, "50")) {
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, 0, base + i * 1000L, null, bytes("r" + i)));
            }
            p.flush();
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        Map<String, Object> result = Out.map("topic", topic);
        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            c.assign(List.of(tp));
            Map<String, Object> times = new TreeMap<>();
            for (long at : List.of(base - 1, base + 3500, base + 9000, base + 20_000)) {
                OffsetAndTimestamp found = c.offsetsForTimes(Map.of(tp, at)).get(tp);
                times.put(String.valueOf(at - base),
                        found == null ? null : Arrays.asList(found.offset(), found.timestamp() - base));
            }
            result.put("offsets_for_times", times);
            result.put("beginning", c.beginningOffsets(List.of(tp)).get(tp));
            result.put("end", c.endOffsets(List.of(tp)).get(tp));
            List<Object> reads = new ArrayList<>();
            for (long to : List.of(7L, 2L, 9L)) {
                c.seek(tp, to);
                List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
                long deadline = System.currentTimeMillis() + 15_000;
                while (got.isEmpty() && System.currentTimeMillis() < deadline) {
                    c.poll(Duration.ofMillis(200)).records(tp).forEach(got::add);
                }
                reads.add(got.isEmpty() ? null : Arrays.asList(got.get(0).offset(), utf8(got.get(0).value())));
            }
            result.put("seek_reads", reads);
            c.seekToEnd(List.of(tp));
            result.put("position_at_end", c.position(tp));
        }
        return result;
    }
}
