package io.github.clickstream_anomaly.flink;

import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.ChainingStrategy;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

/**
 * Consecutive clicks-stream records joined into one bundle, in the JVM, so the job's Python operator is
 * called once per bundle instead of once per record (flink/clickstream_job/bundles.py reads them; see
 * docs/flink.md, Throughput). Emits {@code Row(key, bundle)}: the key is the job's (a constant: the site),
 * and the bundle is {@code "n"} followed by the records joined by {@link #SEPARATOR}, or {@code "1"}
 * followed by one record that itself holds the separator (it comes alone, after the bundle before it, so
 * order is kept and nothing needs escaping). With a {@code tag}, each record is prefixed with it (a file
 * source's split; Kinesis records come tagged with their shard by {@link ShardTaggedSchema}).
 *
 * <p>A bundle is emitted when it holds {@code maxRecords} records, {@code maxDelayMs} of processing time
 * after its first record, before a checkpoint barrier (so every record before the barrier is in the
 * downstream state the checkpoint takes, and this operator needs no state of its own), before a watermark
 * and at the end of the input.
 */
public final class RecordBundler extends AbstractStreamOperator<Row>
        implements OneInputStreamOperator<String, Row>, BoundedOneInput {

    private static final long serialVersionUID = 1L;

    /** Between the records of a bundle: ASCII group separator (bundles.BUNDLE_SEPARATOR). */
    public static final char SEPARATOR = '\u001d';

    private final String key;
    private final String tag;
    private final int maxRecords;
    private final long maxDelayMs;

    private transient StringBuilder buffer;
    private transient int count;
    private transient boolean timerSet;

    /**
     * @param key the job's key, the first field of every row
     * @param tag prefixed to each record ({@code null}: none)
     * @param maxRecords records per bundle at most (at least 1)
     * @param maxDelayMs processing time a record may wait for its bundle to fill, ms (at least 1)
     */
    public RecordBundler(String key, String tag, int maxRecords, long maxDelayMs) {
        if (maxRecords < 1 || maxDelayMs < 1) {
            throw new IllegalArgumentException("maxRecords and maxDelayMs must be at least 1");
        }
        this.key = key;
        this.tag = tag == null ? "" : tag;
        this.maxRecords = maxRecords;
        this.maxDelayMs = maxDelayMs;
        setChainingStrategy(ChainingStrategy.ALWAYS); // in the source's task: no exchange before it
    }

    @Override
    public void open() throws Exception {
        super.open();
        buffer = new StringBuilder(1 << 16);
        count = 0;
        timerSet = false;
    }

    @Override
    public void processElement(StreamRecord<String> element) throws Exception {
        String record = element.getValue();
        if (record.indexOf(SEPARATOR) >= 0) {
            flush();
            output.collect(new StreamRecord<>(Row.of(key, "1" + tag + record)));
            return;
        }
        if (count == 0) {
            buffer.append('n');
            if (!timerSet) {
                timerSet = true;
                long at = getProcessingTimeService().getCurrentProcessingTime() + maxDelayMs;
                getProcessingTimeService().registerTimer(at, time -> onTimer());
            }
        } else {
            buffer.append(SEPARATOR);
        }
        buffer.append(tag).append(record);
        if (++count >= maxRecords) {
            flush();
        }
    }

    private void onTimer() {
        timerSet = false;
        flush();
    }

    private void flush() {
        if (count == 0) {
            return;
        }
        output.collect(new StreamRecord<>(Row.of(key, buffer.toString())));
        buffer.setLength(0);
        count = 0;
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        flush();
        super.processWatermark(mark);
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        flush();
        super.prepareSnapshotPreBarrier(checkpointId);
    }

    @Override
    public void endInput() {
        flush();
    }

    @Override
    public void finish() throws Exception {
        flush();
        super.finish();
    }
}
