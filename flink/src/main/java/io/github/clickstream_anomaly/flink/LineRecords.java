package io.github.clickstream_anomaly.flink;

import org.apache.flink.api.common.functions.MapFunction;

/**
 * A line of a local input file as a clicks-stream record: the clicks of a producer-aggregated record are
 * joined by ASCII record separators on the line, where the stream's record has newlines, which a line
 * cannot hold (flink/clickstream_job/local.py, RECORD_SEPARATOR). Chained to the file source.
 */
public final class LineRecords implements MapFunction<String, String> {

    private static final long serialVersionUID = 1L;

    /** Between an aggregated record's clicks on one line (local.RECORD_SEPARATOR). */
    public static final char RECORD_SEPARATOR = '\u001e';

    @Override
    public String map(String line) {
        return line.indexOf(RECORD_SEPARATOR) < 0 ? line : line.replace(RECORD_SEPARATOR, '\n');
    }
}
