// What a mapper gets after Layer > Merge of a MapRoulette task's osmChange onto the OSM data
// layer, read and merged by JOSM's own classes (OsmReader, OsmChangeReader, DataSetMerger).
// Usage: java -cp josm.jar tests/JosmMerge.java DATA.osm CHANGE.osc [CHANGE.osc ...] (merged in turn)
// Prints "conflicts N", then per new way "way ID" and one line per node of it:
// "node ID new|existing incomplete|complete LON LAT REFERRERS".
import java.io.FileInputStream;
import org.openstreetmap.josm.data.Preferences;
import org.openstreetmap.josm.data.osm.DataSet;
import org.openstreetmap.josm.data.osm.DataSetMerger;
import org.openstreetmap.josm.data.osm.Node;
import org.openstreetmap.josm.data.osm.Way;
import org.openstreetmap.josm.gui.progress.NullProgressMonitor;
import org.openstreetmap.josm.io.OsmChangeReader;
import org.openstreetmap.josm.io.OsmReader;
import org.openstreetmap.josm.spi.preferences.Config;

public class JosmMerge {
    public static void main(String[] args) throws Exception {
        Config.setPreferencesInstance(new Preferences());
        DataSet data = OsmReader.parseDataSet(new FileInputStream(args[0]), NullProgressMonitor.INSTANCE);
        int conflicts = 0;
        for (int i = 1; i < args.length; i++) {
            DataSet change = OsmChangeReader.parseDataSet(new FileInputStream(args[i]), NullProgressMonitor.INSTANCE);
            DataSetMerger merger = new DataSetMerger(data, change);
            merger.merge();
            conflicts += merger.getConflicts().size();
        }
        System.out.println("conflicts " + conflicts);
        for (Way way : data.getWays()) {
            if (!way.isNew()) continue;
            System.out.println("way " + way.getUniqueId());
            for (Node n : way.getNodes()) {
                String where = n.isIncomplete() ? "- -" : n.lon() + " " + n.lat();
                System.out.println("node " + n.getUniqueId() + (n.isNew() ? " new " : " existing ")
                                   + (n.isIncomplete() ? "incomplete " : "complete ") + where + " " + n.getReferrers().size());
            }
        }
    }
}
