package clients;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListTransactionsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Java transactions against a broker, one scenario after another in one JVM: consume-transform-
 * produce with sendOffsetsToTransaction (commit, abort, redo), the admin's view of an open
 * transaction, and zombie fencing. Args: bootstrap, topic prefix. One JSON line per scenario.
 */
public final class TxnScenarios {
    static String bootstrap;
    static String prefix;
    static Admin admin;

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        prefix = args[1];
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin a = Admin.create(p)) {
            admin = a;
            Out.scenario("consume-transform-produce", TxnScenarios::consumeTransformProduce);
            Out.scenario("open-transaction", TxnScenarios::openTransaction);
            Out.scenario("fencing", TxnScenarios::fencing);
            Out.scenario("fence-producers", TxnScenarios::fenceProducers);
        }
    }

    static void createTopic(String topic) throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
    }

    static KafkaProducer<byte[], byte[]> producer(String transactionalId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (transactionalId != null) {
            p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
            p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "30000");
        }
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    static KafkaConsumer<byte[], byte[]> consumer(String isolation, String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    static String utf8(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    static ProducerRecord<byte[], byte[]> record(String topic, String value) {
        return new ProducerRecord<>(topic, 0, null, value.getBytes(StandardCharsets.UTF_8));
    }

    /** Values of partition 0 from the beginning up to the end the isolation level sees. */
    static List<String> readToEnd(String topic, String isolation) {
        TopicPartition tp = new TopicPartition(topic, 0);
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = consumer(isolation, null)) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long end = c.endOffsets(List.of(tp)).get(tp);
            long deadline = System.currentTimeMillis() + 30_000;
            while (c.position(tp) < end && System.currentTimeMillis() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(r -> values.add(utf8(r.value())));
            }
        }
        return values;
    }

    /** Polls the group's consumer until `count` records came. */
    static List<ConsumerRecord<byte[], byte[]>> poll(KafkaConsumer<byte[], byte[]> c, int count) {
        List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
        long deadline = System.currentTimeMillis() + 30_000;
        while (got.size() < count && System.currentTimeMillis() < deadline) {
            c.poll(Duration.ofMillis(200)).forEach(got::add);
        }
        return got;
    }

    /** Transforms records in a transaction that also commits the group's offsets past them. */
    static void transform(KafkaProducer<byte[], byte[]> p, KafkaConsumer<byte[], byte[]> c, String out,
                          List<ConsumerRecord<byte[], byte[]>> records, boolean commit) {
        p.beginTransaction();
        Map<TopicPartition, OffsetAndMetadata> offsets = new TreeMap<>((a, b) -> a.toString().compareTo(b.toString()));
        for (ConsumerRecord<byte[], byte[]> r : records) {
            p.send(record(out, utf8(r.value()).toUpperCase() + (commit ? "" : "-aborted")));
            offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
        }
        p.flush();  // an abort drops what is still unsent: these records reach the log first
        p.sendOffsetsToTransaction(offsets, c.groupMetadata());
        if (commit) {
            p.commitTransaction();
        } else {
            p.abortTransaction();
        }
    }

    /**
     * 20 input records, transformed by a group member in three transactions: the first 10
     * committed, the next 10 aborted (the consumer goes back to the group's committed offset),
     * then the same 10 again, committed.
     */
    static Map<String, Object> consumeTransformProduce() throws Exception {
        String in = prefix + "-ctp-in";
        String out = prefix + "-ctp-out";
        String group = prefix + "-ctp-group";
        createTopic(in);
        createTopic(out);
        try (KafkaProducer<byte[], byte[]> p = producer(null)) {
            for (int i = 0; i < 20; i++) {
                p.send(record(in, "r" + i));
            }
            p.flush();
        }
        TopicPartition tp = new TopicPartition(in, 0);
        List<Long> positions = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> p = producer(prefix + "-ctp");
             KafkaConsumer<byte[], byte[]> c = consumer("read_committed", group)) {
            p.initTransactions();
            c.subscribe(List.of(in));
            List<ConsumerRecord<byte[], byte[]>> all = poll(c, 20);
            transform(p, c, out, all.subList(0, 10), true);
            transform(p, c, out, all.subList(10, 20), false);
            OffsetAndMetadata committed = c.committed(java.util.Set.of(tp)).get(tp);
            positions.add(committed.offset());
            c.seek(tp, committed);
            List<ConsumerRecord<byte[], byte[]>> again = poll(c, 10);
            positions.add(again.get(0).offset());
            transform(p, c, out, again, true);
            positions.add(c.committed(java.util.Set.of(tp)).get(tp).offset());
        }
        return Out.map("output", out, "committed_values", readToEnd(out, "read_committed"),
                "uncommitted_values", readToEnd(out, "read_uncommitted"), "positions", positions,
                "group_offset", admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().get(tp).offset());
    }

    static Map<String, Object> describe(String transactionalId) throws Exception {
        TransactionDescription d = admin.describeTransactions(List.of(transactionalId)).all().get().get(transactionalId);
        List<String> partitions = new ArrayList<>();
        d.topicPartitions().forEach(tp -> partitions.add(tp.toString()));
        return Out.map("state", d.state().toString(), "producer_id", d.producerId(), "epoch", d.producerEpoch(),
                "timeout_ms", d.transactionTimeoutMs(), "start_time_set", d.transactionStartTimeMs().isPresent(),
                "partitions", partitions);
    }

    static List<Object> listed(String transactionalId, ListTransactionsOptions options) throws Exception {
        List<Object> out = new ArrayList<>();
        for (TransactionListing l : admin.listTransactions(options).all().get()) {
            if (l.transactionalId().equals(transactionalId)) {
                out.add(Arrays.asList(l.producerId(), l.state().toString()));
            }
        }
        return out;
    }

    /**
     * An open transaction as the admin client and a read_committed consumer see it: listed and
     * described as Ongoing with its partition, its producer's start offset, a last stable offset
     * that holds back later non-transactional records; then committed.
     */
    static Map<String, Object> openTransaction() throws Exception {
        String topic = prefix + "-open";
        String id = prefix + "-open-txn";
        createTopic(topic);
        TopicPartition tp = new TopicPartition(topic, 0);
        Map<String, Object> result = Out.map("topic", topic);
        try (KafkaProducer<byte[], byte[]> plain = producer(null)) {
            plain.send(record(topic, "before")).get();
            try (KafkaProducer<byte[], byte[]> p = producer(id)) {
                p.initTransactions();
                p.beginTransaction();
                for (int i = 0; i < 3; i++) {
                    p.send(record(topic, "txn" + i));
                }
                p.flush();
                plain.send(record(topic, "after")).get();
                result.put("listed_ongoing", listed(id, new ListTransactionsOptions()));
                result.put("listed_ongoing_filter", listed(id, new ListTransactionsOptions()
                        .filterStates(List.of(TransactionState.ONGOING))));
                result.put("listed_commit_filter", listed(id, new ListTransactionsOptions()
                        .filterStates(List.of(TransactionState.COMPLETE_COMMIT))));
                result.put("described_ongoing", describe(id));
                List<Object> producers = new ArrayList<>();
                for (ProducerState s : admin.describeProducers(List.of(tp)).partitionResult(tp).get().activeProducers()) {
                    producers.add(Arrays.asList(s.producerId(), s.producerEpoch(), s.lastSequence(),
                            s.currentTransactionStartOffset().isPresent() ? s.currentTransactionStartOffset().getAsLong() : null));
                }
                result.put("producers_ongoing", producers);
                try (KafkaConsumer<byte[], byte[]> c = consumer("read_committed", null)) {
                    result.put("read_committed_end", c.endOffsets(List.of(tp)).get(tp));
                }
                try (KafkaConsumer<byte[], byte[]> c = consumer("read_uncommitted", null)) {
                    result.put("read_uncommitted_end", c.endOffsets(List.of(tp)).get(tp));
                }
                result.put("read_committed_before_commit", readToEnd(topic, "read_committed"));
                for (IsolationLevel level : IsolationLevel.values()) {
                    result.put("admin_latest_" + level.toString().toLowerCase(), admin.listOffsets(
                            Map.of(tp, OffsetSpec.latest()), new ListOffsetsOptions(level)).all().get().get(tp).offset());
                }
                p.commitTransaction();
                long deadline = System.currentTimeMillis() + 15_000;
                Map<String, Object> after = describe(id);
                while (!after.get("state").equals("CompleteCommit") && System.currentTimeMillis() < deadline) {
                    Thread.sleep(100);
                    after = describe(id);
                }
                result.put("described_committed", after);
            }
        }
        result.put("read_committed_after_commit", readToEnd(topic, "read_committed"));
        String unknown;
        try {
            describe(prefix + "-no-such-transactional-id");
            unknown = "found";
        } catch (Exception e) {
            unknown = Out.errorName(e);
        }
        result.put("describe_unknown", unknown);
        return result;
    }

    /** Admin.fenceProducers (KIP-618) fences a producer with an open transaction, which is aborted. */
    static Map<String, Object> fenceProducers() throws Exception {
        String topic = prefix + "-fence-producers";
        String id = prefix + "-admin-fenced-txn";
        createTopic(topic);
        Map<String, Object> result = Out.map("topic", topic);
        try (KafkaProducer<byte[], byte[]> p = producer(id)) {
            p.initTransactions();
            p.beginTransaction();
            p.send(record(topic, "fenced-1")).get();
            result.put("before", describe(id));
            admin.fenceProducers(List.of(id)).all().get();
            result.put("after", describe(id));
            String commitError = null;
            try {
                p.commitTransaction();
            } catch (Exception e) {
                commitError = Out.errorName(e);
            }
            result.put("commit", commitError);
        }
        try (KafkaProducer<byte[], byte[]> p = producer(id)) {
            p.initTransactions();
            p.beginTransaction();
            p.send(record(topic, "after-fence"));
            p.commitTransaction();
        }
        result.put("committed_values", readToEnd(topic, "read_committed"));
        return result;
    }

    /**
     * Zombie fencing: a second producer with the same transactional.id fences the first, whose
     * open transaction is aborted; the first's next send or commit fails.
     */
    static Map<String, Object> fencing() throws Exception {
        String topic = prefix + "-fencing";
        String id = prefix + "-fenced-txn";
        createTopic(topic);
        Map<String, Object> result = Out.map("topic", topic);
        KafkaProducer<byte[], byte[]> zombie = producer(id);
        try {
            zombie.initTransactions();
            zombie.beginTransaction();
            zombie.send(record(topic, "zombie-1")).get();
            result.put("zombie_epoch", describe(id).get("epoch"));
            try (KafkaProducer<byte[], byte[]> fresh = producer(id)) {
                fresh.initTransactions();
                result.put("fresh_epoch", describe(id).get("epoch"));
                String sendError = null;
                try {
                    zombie.send(record(topic, "zombie-2")).get();
                } catch (Exception e) {
                    sendError = Out.errorName(e);
                }
                result.put("zombie_send", sendError);
                String commitError = null;
                try {
                    zombie.commitTransaction();
                } catch (Exception e) {
                    commitError = Out.errorName(e);
                }
                result.put("zombie_commit", commitError);
                fresh.beginTransaction();
                fresh.send(record(topic, "fresh-1"));
                fresh.commitTransaction();
            }
        } finally {
            zombie.close(Duration.ofSeconds(5));
        }
        result.put("committed_values", readToEnd(topic, "read_committed"));
        result.put("uncommitted_values", readToEnd(topic, "read_uncommitted"));
        return result;
    }
}
