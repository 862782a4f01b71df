package clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java AdminClient against a broker, one scenario after another in one JVM: topics (create,
 * describe, delete, partitions), configs, deleteRecords, listOffsets, describeCluster, consumer
 * groups, describeProducers. Args: bootstrap, topic prefix. Prints one JSON line per scenario.
 */
public final class AdminScenarios {
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
            Out.scenario("topics", AdminScenarios::topics);
            Out.scenario("topics-by-id", AdminScenarios::topicsById);
            Out.scenario("configs", AdminScenarios::configs);
            Out.scenario("delete-records-list-offsets", AdminScenarios::deleteRecordsAndListOffsets);
            Out.scenario("describe-cluster", AdminScenarios::describeCluster);
            Out.scenario("consumer-groups", AdminScenarios::consumerGroups);
            Out.scenario("describe-producers", AdminScenarios::describeProducers);
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

    static void produce(String topic, int partition, int count, long firstTimestamp) throws Exception {
        try (KafkaProducer<byte[], byte[]> p = producer()) {
            for (int i = 0; i < count; i++) {
                p.send(new ProducerRecord<>(topic, partition, firstTimestamp + i, null, ("v" + i).getBytes()));
            }
            p.flush();
        }
    }

    static Map<String, Object> describe(TopicDescription d) {
        List<Object> partitions = new ArrayList<>();
        for (TopicPartitionInfo info : d.partitions()) {
            partitions.add(Arrays.asList(info.partition(), info.leader() == null ? null : info.leader().id(),
                    info.replicas().size(), info.isr().size()));
        }
        return Out.map("name", d.name(), "internal", d.isInternal(), "id_set", d.topicId() != null,
                "partitions", partitions);
    }

    /** create (with configs), a second create, describe, createPartitions, delete, list. */
    static Map<String, Object> topics() throws Exception {
        String topic = prefix + "-topics";
        admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1)
                .configs(Map.of("cleanup.policy", "compact", "retention.ms", "3600000")))).all().get();
        String again;
        try {
            admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get();
            again = "created";
        } catch (Exception e) {
            again = Out.errorName(e);
        }
        Map<String, Object> created = describe(admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic));
        admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get();
        Map<String, Object> grown = describe(admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic));
        String shrink;
        try {
            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all().get();
            shrink = "done";
        } catch (Exception e) {
            shrink = Out.errorName(e);
        }
        Config config = admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, topic)))
                .all().get().values().iterator().next();
        boolean listedBefore = admin.listTopics().names().get().contains(topic);
        admin.deleteTopics(List.of(topic)).all().get();
        boolean listedAfter = true;
        long deadline = System.currentTimeMillis() + 15_000;
        while (listedAfter && System.currentTimeMillis() < deadline) {
            listedAfter = admin.listTopics().names().get().contains(topic);
        }
        String describeDeleted;
        try {
            admin.describeTopics(List.of(topic)).allTopicNames().get();
            describeDeleted = "found";
        } catch (Exception e) {
            describeDeleted = Out.errorName(e);
        }
        return Out.map("created", created, "create_again", again, "grown", grown, "shrink", shrink,
                "cleanup_policy", config.get("cleanup.policy").value(),
                "retention_ms", Arrays.asList(config.get("retention.ms").value(), config.get("retention.ms").source().name()),
                "listed_before_delete", listedBefore, "listed_after_delete", listedAfter,
                "describe_deleted", describeDeleted);
    }

    /** describeTopics and deleteTopics by topic id (Metadata by id), and an id no topic has. */
    static Map<String, Object> topicsById() throws Exception {
        String topic = prefix + "-by-id";
        Uuid id = admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).topicId(topic).get();
        TopicDescription d = admin.describeTopics(TopicCollection.ofTopicIds(List.of(id))).allTopicIds().get().get(id);
        Uuid listedId = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).topicId();
        String unknown;
        try {
            admin.describeTopics(TopicCollection.ofTopicIds(List.of(Uuid.randomUuid()))).allTopicIds().get();
            unknown = "found";
        } catch (Exception e) {
            unknown = Out.errorName(e);
        }
        admin.deleteTopics(TopicCollection.ofTopicIds(List.of(id))).all().get();
        boolean listedAfter = true;
        long deadline = System.currentTimeMillis() + 15_000;
        while (listedAfter && System.currentTimeMillis() < deadline) {
            listedAfter = admin.listTopics().names().get().contains(topic);
        }
        return Out.map("described", describe(d), "same_id", id.equals(d.topicId()) && id.equals(listedId),
                "unknown_id", unknown, "listed_after_delete", listedAfter);
    }

    static Map<String, Object> entry(Config config, String name) {
        ConfigEntry e = config.get(name);
        return Out.map("value", e.value(), "source", e.source().name(), "default", e.isDefault());
    }

    /** incrementalAlterConfigs: SET, APPEND to a list, DELETE back to the default, a bad value. */
    static Map<String, Object> configs() throws Exception {
        String topic = prefix + "-configs";
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        admin.incrementalAlterConfigs(Map.of(resource, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("max.message.bytes", "2097152"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND))))
                .all().get();
        Config set = admin.describeConfigs(List.of(resource)).all().get().get(resource);
        admin.incrementalAlterConfigs(Map.of(resource, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE))))
                .all().get();
        Config deleted = admin.describeConfigs(List.of(resource)).all().get().get(resource);
        String bad;
        try {
            admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET))))
                    .all().get();
            bad = "accepted";
        } catch (Exception e) {
            bad = Out.errorName(e);
        }
        return Out.map("set", Out.map("retention.ms", entry(set, "retention.ms"),
                        "max.message.bytes", entry(set, "max.message.bytes"),
                        "cleanup.policy", entry(set, "cleanup.policy")),
                "deleted", Out.map("retention.ms", entry(deleted, "retention.ms")), "bad_value", bad);
    }

    static Map<String, Object> offsets(TopicPartition tp, OffsetSpec spec) throws Exception {
        ListOffsetsResultInfo info = admin.listOffsets(Map.of(tp, spec)).all().get().get(tp);
        return Out.map("offset", info.offset(), "timestamp", info.timestamp());
    }

    /** deleteRecords moves the log start offset; listOffsets by spec before and after. */
    static Map<String, Object> deleteRecordsAndListOffsets() throws Exception {
        String topic = prefix + "-delete-records";
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
        long base = 1_700_000_000_000L;
        produce(topic, 0, 10, base);
        TopicPartition tp = new TopicPartition(topic, 0);
        Map<String, Object> before = Out.map("earliest", offsets(tp, OffsetSpec.earliest()),
                "latest", offsets(tp, OffsetSpec.latest()), "max_timestamp", offsets(tp, OffsetSpec.maxTimestamp()),
                "for_timestamp", offsets(tp, OffsetSpec.forTimestamp(base + 4)),
                "after_last", offsets(tp, OffsetSpec.forTimestamp(base + 100)));
        long low = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(6))).lowWatermarks().get(tp).get()
                .lowWatermark();
        Map<String, Object> after = Out.map("earliest", offsets(tp, OffsetSpec.earliest()),
                "latest", offsets(tp, OffsetSpec.latest()),
                "for_timestamp", offsets(tp, OffsetSpec.forTimestamp(base + 2)));
        String beyond;
        try {
            admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(11))).all().get();
            beyond = "deleted";
        } catch (Exception e) {
            beyond = Out.errorName(e);
        }
        long all = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(-1))).lowWatermarks().get(tp).get()
                .lowWatermark();
        return Out.map("before", before, "low_watermark", low, "after", after, "beyond_end", beyond,
                "delete_all_low_watermark", all);
    }

    static Map<String, Object> describeCluster() throws Exception {
        DescribeClusterResult c = admin.describeCluster();
        List<Object> nodes = new ArrayList<>();
        for (Node n : c.nodes().get()) {
            nodes.add(Arrays.asList(n.id(), n.host(), n.port()));
        }
        Node controller = c.controller().get();
        return Out.map("cluster_id", c.clusterId().get(), "nodes", nodes,
                "controller", controller == null ? null : controller.id());
    }

    static Map<String, Object> groupDescription(String group) throws Exception {
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        return Out.map("state", d.groupState().toString(), "type", d.type().toString(), "members", d.members().size(),
                "simple", d.isSimpleConsumerGroup(), "coordinator", d.coordinator() == null ? null : d.coordinator().id());
    }

    static Map<String, Object> committed(String group) throws Exception {
        Map<String, Object> out = new TreeMap<>();
        admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
                .forEach((tp, om) -> out.put(tp.toString(), om == null ? null : Arrays.asList(om.offset(), om.metadata())));
        return out;
    }

    /** A group with committed offsets: list, describe, list/alter offsets, delete. */
    static Map<String, Object> consumerGroups() throws Exception {
        String topic = prefix + "-groups";
        String group = prefix + "-group";
        admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get();
        produce(topic, 0, 5, System.currentTimeMillis());
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.assign(List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1)));
            c.commitSync(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(3, "java"),
                    new TopicPartition(topic, 1), new OffsetAndMetadata(0)));
        }
        List<Object> listed = new ArrayList<>();
        for (GroupListing g : admin.listGroups(ListGroupsOptions.forConsumerGroups()).all().get()) {
            if (g.groupId().equals(group)) {
                listed.add(Arrays.asList(g.groupId(), g.type().map(Object::toString).orElse(null),
                        g.groupState().map(Object::toString).orElse(null), g.protocol()));
            }
        }
        Map<String, Object> described = groupDescription(group);
        Map<String, Object> offsets = committed(group);
        // Two groups in one request (OffsetFetch v8+ batches groups), one of them unknown.
        Map<String, Object> batched = new TreeMap<>();
        admin.listConsumerGroupOffsets(Map.of(group, new ListConsumerGroupOffsetsSpec(),
                prefix + "-no-such-group", new ListConsumerGroupOffsetsSpec())).all().get()
                .forEach((g, offsets2) -> batched.put(g, offsets2.size()));
        admin.alterConsumerGroupOffsets(group, Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(5, "altered"),
                new TopicPartition(topic, 1), new OffsetAndMetadata(0))).all().get();
        Map<String, Object> altered = committed(group);
        admin.deleteConsumerGroupOffsets(group, java.util.Set.of(new TopicPartition(topic, 1))).all().get();
        Map<String, Object> afterOffsetDelete = committed(group);
        admin.deleteConsumerGroups(List.of(group)).all().get();
        boolean listedAfter = false;
        for (GroupListing g : admin.listGroups(ListGroupsOptions.forConsumerGroups()).all().get()) {
            listedAfter |= g.groupId().equals(group);
        }
        String describeDeleted;
        try {
            describeDeleted = (String) groupDescription(group).get("state");
        } catch (Exception e) {
            describeDeleted = Out.errorName(e);
        }
        String deleteAgain;
        try {
            admin.deleteConsumerGroups(List.of(group)).all().get();
            deleteAgain = "deleted";
        } catch (Exception e) {
            deleteAgain = Out.errorName(e);
        }
        return Out.map("listed", listed, "described", described, "offsets", offsets, "batched", batched,
                "altered", altered,
                "after_offset_delete", afterOffsetDelete,
                "listed_after_delete", listedAfter, "described_after_delete", describeDeleted,
                "delete_again", deleteAgain);
    }

    /** The idempotent producer that wrote a partition: its id, epoch and last sequence. */
    static Map<String, Object> describeProducers() throws Exception {
        String topic = prefix + "-producers";
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaProducer<byte[], byte[]> p = producer(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true")) {
            for (int i = 0; i < 7; i++) {
                p.send(new ProducerRecord<>(topic, 0, null, ("v" + i).getBytes())).get();
            }
        }
        List<Object> producers = new ArrayList<>();
        Collection<ProducerState> active = admin.describeProducers(List.of(tp)).partitionResult(tp).get().activeProducers();
        for (ProducerState s : active) {
            producers.add(Out.map("producer_id", s.producerId(), "epoch", s.producerEpoch(),
                    "last_sequence", s.lastSequence(), "last_timestamp_set", s.lastTimestamp() > 0,
                    "coordinator_epoch", s.coordinatorEpoch().isPresent() ? s.coordinatorEpoch().getAsInt() : null,
                    "txn_start_offset", s.currentTransactionStartOffset().isPresent()
                            ? s.currentTransactionStartOffset().getAsLong() : null));
        }
        return Out.map("producers", producers);
    }
}
