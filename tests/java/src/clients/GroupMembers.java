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
            }
        }
        for (Member m : MEMBERS.values()) {
            m.stop();
        }
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
