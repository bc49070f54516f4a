package streamflow.sandbox;

import java.util.HashMap;
import java.util.Map;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

/**
 * Sandbox stand-in for the production fraud-detection pipeline: generated card transactions,
 * keyed per card, a running total kept in keyed state, results discarded.
 *
 * <p>Program arguments: --name, --checkpoint-interval-ms, --checkpoint-timeout-ms,
 * --snapshot-delay-ms (sleep inside snapshotState, to make checkpoints expire on purpose), --rate
 * (records per second). Checkpoint storage comes from the cluster configuration.
 */
public final class FraudDetectionJob {

    private static final TypeInformation<Tuple2<String, Double>> TRANSACTION =
            Types.TUPLE(Types.STRING, Types.DOUBLE);
    private static final int CARDS = 1000;

    private FraudDetectionJob() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> params = parse(args);
        String name = params.getOrDefault("name", "FraudDetectionJob");
        long interval = Long.parseLong(params.getOrDefault("checkpoint-interval-ms", "2000"));
        long timeout = Long.parseLong(params.getOrDefault("checkpoint-timeout-ms", "60000"));
        long snapshotDelay = Long.parseLong(params.getOrDefault("snapshot-delay-ms", "0"));
        double rate = Double.parseDouble(params.getOrDefault("rate", "50"));

        Map<String, String> conf = new HashMap<>();
        conf.put("state.backend.type", "hashmap");
        conf.put("execution.checkpointing.interval", interval + " ms");
        conf.put("execution.checkpointing.timeout", timeout + " ms");
        // Expired checkpoints must show up as failed checkpoints of a RUNNING job, not as restarts.
        conf.put("execution.checkpointing.tolerable-failed-checkpoints", String.valueOf(Integer.MAX_VALUE));
        StreamExecutionEnvironment env =
                StreamExecutionEnvironment.getExecutionEnvironment(Configuration.fromMap(conf));

        DataGeneratorSource<Tuple2<String, Double>> source = new DataGeneratorSource<>(
                i -> Tuple2.of("card-" + (i % CARDS), (double) ((i * 7919) % 50000) / 100.0),
                Long.MAX_VALUE,
                RateLimiterStrategy.perSecond(rate),
                TRANSACTION);

        env.fromSource(source, WatermarkStrategy.noWatermarks(), "transactions")
                .uid("transactions")
                .keyBy(t -> t.f0)
                .process(new RunningTotal(snapshotDelay))
                .name("card-totals")
                .uid("card-totals")
                .sinkTo(new DiscardingSink<>())
                .name("discard")
                .uid("discard");

        env.execute(name);
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> params = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --key value pairs, got " + args[i]);
            }
            params.put(args[i].substring(2), args[i + 1]);
        }
        return params;
    }

    /** Per-card running total; optionally slow to snapshot so that checkpoints time out. */
    static final class RunningTotal
            extends KeyedProcessFunction<String, Tuple2<String, Double>, Tuple2<String, Double>>
            implements CheckpointedFunction {

        private static final long serialVersionUID = 1L;

        private final long snapshotDelayMs;
        private transient ValueState<Double> total;

        RunningTotal(long snapshotDelayMs) {
            this.snapshotDelayMs = snapshotDelayMs;
        }

        @Override
        public void open(OpenContext context) {
            total = getRuntimeContext().getState(new ValueStateDescriptor<>("total", Types.DOUBLE));
        }

        @Override
        public void processElement(Tuple2<String, Double> txn, Context ctx,
                                   Collector<Tuple2<String, Double>> out) throws Exception {
            Double sum = total.value();
            double next = (sum == null ? 0.0 : sum) + txn.f1;
            total.update(next);
            out.collect(Tuple2.of(txn.f0, next));
        }

        @Override
        public void snapshotState(FunctionSnapshotContext context) throws InterruptedException {
            if (snapshotDelayMs > 0) {
                Thread.sleep(snapshotDelayMs);
            }
        }

        @Override
        public void initializeState(FunctionInitializationContext context) {
            // Keyed state is registered in open(); CheckpointedFunction is only here for the delay hook.
        }
    }
}
