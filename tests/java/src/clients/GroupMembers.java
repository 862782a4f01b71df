package clients;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.MemberToRemove;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.SubscriptionPattern;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Java consumer-group members in one JVM, driven by commands on stdin (arg: bootstrap):
 *
 *   start NAME TOPIC key=value...   a consumer subscribed to TOPIC (group.id, group.protocol,
 *                                   partition.assignment.strategy, group.instance.id... as given);
 *                                   TOPIC "re2:REGEX" subscribes to a broker-side regex (KIP-848)
 *   stop NAME                       closes it (leaving the group, unless static)
 *   describe GROUP                  the Java admin's describeConsumerGroups, as {"describe": GROUP, ...}
 *   remove GROUP INSTANCE           removeMembersFromConsumerGroup of a static member, as {"removed": ...}
 *
 * End of input closes every member and exits. Each member prints JSON lines, as
 * tests/groups/member.py does for librdkafka: {"member", "ev": assign|revoke|lost, "parts", "tps"},
 * {"member", "ev": "msg", "p", "o", "v"}, {"member", "ev": "error", "code"}, {"member", "ev": "closed"}.
 */
public final class GroupMembers {
    static String bootstrap;
    static final Map<String, Member> MEMBERS = new ConcurrentHashMap<>();

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] words = line.trim().split("\\s+");
            if (words[0].equals("start")) {
                Properties props = new Properties();
                for (int i = 3; i < words.length; i++) {
                    int eq = words[i].indexOf('=');
                    props.put(words[i].substring(0, eq), words[i].substring(eq + 1));
                }
                Member m = new Member(words[1], words[2], props);
                MEMBERS.put(words[1], m);
                m.thread.start();
            } else if (words[0].equals("stop")) {
                MEMBERS.remove(words[1]).stop();
            } else if (words[0].equals("describe")) {
                Out.emit(describe(words[1]));
            } else if (words[0].equals("remove")) {
                String error = null;
                try {
                    admin().removeMembersFromConsumerGroup(words[1], new RemoveMembersFromConsumerGroupOptions(
                            List.of(new MemberToRemove(words[2])))).all().get();
                } catch (Exception e) {
                    error = Out.errorName(e);
                }
                Out.emit(Out.map("removed", words[2], "error", error));
            }
        }
        for (Member m : MEMBERS.values()) {
            m.stop();
        }
        if (admin != null) {
            admin.close();
        }
    }

    static Admin admin;

    static Admin admin() {
        if (admin == null) {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            admin = Admin.create(p);
        }
        return admin;
    }

    /** A group as the Java admin describes it: ConsumerGroupDescribe, else DescribeGroups. */
    static Map<String, Object> describe(String group) {
        Map<String, Object> out = Out.map("describe", group);
        try {
            ConsumerGroupDescription d = admin().describeConsumerGroups(List.of(group)).all().get().get(group);
            List<Object> members = new ArrayList<>();
            for (MemberDescription m : d.members()) {
                List<String> assigned = new ArrayList<>();
                m.assignment().topicPartitions().forEach(tp -> assigned.add(tp.toString()));
                assigned.sort(null);
                members.add(Out.map("client_id", m.clientId(), "instance_id", m.groupInstanceId().orElse(null),
                        "assigned", assigned, "epoch", m.memberEpoch().orElse(null),
                        "upgraded", m.upgraded().orElse(null)));
            }
            members.sort((a, b) -> String.valueOf(((Map<?, ?>) a).get("client_id"))
                    .compareTo(String.valueOf(((Map<?, ?>) b).get("client_id"))));
            out.putAll(Out.map("type", d.type().toString(), "state", d.groupState().toString(),
                    "assignor", d.partitionAssignor(), "group_epoch", d.groupEpoch().orElse(null),
                    "members", members));
        } catch (Exception e) {
            out.put("error", Out.errorName(e));
        }
        return out;
    }

    static final class Member implements Runnable, ConsumerRebalanceListener {
        final String name;
        final String topic;
        final KafkaConsumer<byte[], byte[]> consumer;
        final Thread thread;
        volatile boolean stopping;

        Member(String name, String topic, Properties settings) {
            this.name = name;
            this.topic = topic;
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            p.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
            p.putAll(settings);
            consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
            thread = new Thread(this, name);
        }

        void emit(String event, Object... more) {
            Map<String, Object> line = Out.map("member", name, "ev", event);
            line.putAll(Out.map(more));
            Out.emit(line);
        }

        static List<Integer> parts(Collection<TopicPartition> partitions) {
            List<Integer> out = new ArrayList<>();
            partitions.forEach(tp -> out.add(tp.partition()));
            out.sort(null);
            return out;
        }

        static List<String> tps(Collection<TopicPartition> partitions) {
            List<String> out = new ArrayList<>();
            partitions.forEach(tp -> out.add(tp.toString()));
            out.sort(null);
            return out;
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            emit("assign", "parts", parts(partitions), "tps", tps(partitions));
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            emit("revoke", "parts", parts(partitions), "tps", tps(partitions));
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            emit("lost", "parts", parts(partitions), "tps", tps(partitions));
        }

        @Override
        public void run() {
            try {
                if (topic.startsWith("re2:")) {
                    consumer.subscribe(new SubscriptionPattern(topic.substring(4)), this);
                } else {
                    consumer.subscribe(List.of(topic), this);
                }
                while (!stopping) {
                    try {
                        ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                        for (ConsumerRecord<byte[], byte[]> r : records) {
                            emit("msg", "p", r.partition(), "o", r.offset(),
                                    "v", new String(r.value(), StandardCharsets.UTF_8));
                        }
                        if (!records.isEmpty()) {
                            consumer.commitSync();
                        }
                    } catch (WakeupException e) {
                        // stop() interrupts a poll or a commit
                    } catch (Exception e) {
                        emit("error", "code", Out.errorName(e), "text", String.valueOf(e.getMessage()));
                    }
                }
            } finally {
                try {
                    consumer.close(Duration.ofSeconds(10));
                } catch (Exception e) {
                    emit("error", "code", Out.errorName(e), "text", String.valueOf(e.getMessage()));
                }
                emit("closed");
            }
        }

        void stop() throws InterruptedException {
            stopping = true;
            consumer.wakeup();
            thread.join(30_000);
        }
    }
}
