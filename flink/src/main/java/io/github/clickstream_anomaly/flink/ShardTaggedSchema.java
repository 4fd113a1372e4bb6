package io.github.clickstream_anomaly.flink;

import java.nio.charset.StandardCharsets;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.connectors.kinesis.serialization.KinesisDeserializationSchema;

/**
 * A Kinesis record as text, tagged with the shard it was read from: {@code shardId + SEPARATOR + data}
 * (UTF-8). The job's windows operator keeps one event clock per shard and takes the watermark as their
 * minimum (flink/clickstream_job/shards.py, which splits the tag off at the first separator; a shard id
 * never holds one). Used with the legacy {@code FlinkKinesisConsumer}, whose deserialization schema is
 * given the shard id of every record.
 */
public final class ShardTaggedSchema implements KinesisDeserializationSchema<String> {

    private static final long serialVersionUID = 1L;

    /** Between the shard id and the data: ASCII unit separator (shards.SHARD_SEPARATOR). */
    public static final String SEPARATOR = "\u001f";

    @Override
    public String deserialize(
            byte[] recordValue,
            String partitionKey,
            String seqNum,
            long approxArrivalTimestamp,
            String stream,
            String shardId) {
        return shardId + SEPARATOR + new String(recordValue, StandardCharsets.UTF_8);
    }

    @Override
    public TypeInformation<String> getProducedType() {
        return Types.STRING;
    }
}
